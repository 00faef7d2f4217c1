"""pilotopt's own models: rows 240:480 resized to 66 x 200 (bilinear), RGB NHWC raw pixels 0..255
(the model normalizes inside), outputs (v, w) normalized to [0, 1] by the dataset's fixed bounds."""

from pilotopt.contracts.contract import InputContract, register_contract

register_contract(InputContract(name="pilotopt", description=__doc__.split(":")[0]))
