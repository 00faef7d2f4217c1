"""DeepLearningStudio TensorFlow PilotNet at its HEAD: the whole frame (no crop) resized to 66 x 200,
RGB NHWC, albumentations Normalize() (ImageNet mean/std of pixel / 255); outputs (v, w) normalized by
v 6.5..24, w -7.1..7.1. A model trained with DLS's 'cropped' option: `dls-tf-cropped`."""

import dataclasses

from pilotopt.contracts.contract import SCALINGS, InputContract, register_contract
from pilotopt.preprocess import FRAME_H, Geometry

scale, mean, std = SCALINGS["imagenet"]
DLS_TF = register_contract(InputContract(name="dls-tf", geometry=Geometry(0, FRAME_H), pixel_scale=scale, mean=mean,
                                         std=std, description="DeepLearningStudio TF: no crop, NHWC, Normalize()"))
register_contract(dataclasses.replace(DLS_TF, name="dls-tf-cropped", geometry=Geometry(),
                                      description="DeepLearningStudio TF, cropped: rows 240:480, NHWC, Normalize()"))
