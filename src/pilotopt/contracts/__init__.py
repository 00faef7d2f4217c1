"""Input contracts: how camera frames become a model's input and its outputs become (v, w).

    from pilotopt.contracts import get_contract, load_contract
    c = load_contract("dls-torch")            # a preset name, or a YAML file
    x = c.encode(images)                      # uint8 (N, H, W, 3) of c.geometry -> model input
    y = c.decode(model_outputs)               # -> pilotopt-normalized (v, w), as the labels

A contract has two halves. Its `geometry` (crop rows, size, interpolation) decides the uint8 image,
which the data cache and the simulator's view produce once per geometry. The rest (channel order,
layout, value scaling, output mapping) is applied in `encode` / `decode` by every stage that feeds
the model: calibration, fine-tuning, offline evaluation, the brain step. Each preset is one module
in this package that calls `register_contract`; anything else is a YAML file (see `from_dict`)."""

from pilotopt.contracts.contract import (DEFAULT_CONTRACT, RANGE_MARGIN, InputContract, OutputMap, contract_names,
                                         from_dict, get_contract, load_contract, out_of_range_share, register_contract)

__all__ = ["DEFAULT_CONTRACT", "RANGE_MARGIN", "InputContract", "OutputMap", "contract_names", "from_dict",
           "get_contract", "load_contract", "out_of_range_share", "register_contract"]
