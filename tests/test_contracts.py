"""Input contracts: each preset's preprocessing and output mapping written out by hand, the YAML
form, and one-line errors for a malformed contract."""

from __future__ import annotations

import numpy as np
import pytest

from pilotopt.contracts import contract_names, get_contract, load_contract
from pilotopt.errors import BadInputError
from pilotopt.preprocess import PILOTNET_GEOMETRY, Geometry, crop_resize

IMAGES = np.random.default_rng(0).integers(0, 256, (3, 66, 200, 3)).astype(np.uint8)


def test_presets_are_registered():
    assert {"pilotopt", "dls-torch", "dls-tf", "dls-tf-cropped", "bm-torch-legacy"} <= set(contract_names())


def test_pilotopt_contract_is_exactly_the_identity():
    c = get_contract("pilotopt")
    assert c.raw_pixels and c.outputs.identity and c.geometry == PILOTNET_GEOMETRY
    np.testing.assert_array_equal(c.encode(IMAGES), IMAGES.astype(np.float32))
    y = np.random.default_rng(1).normal(0.5, 0.3, (5, 2)).astype(np.float32)
    assert c.decode(y) is y or np.array_equal(c.decode(y), y)


def test_dls_torch_is_nchw_over_255():
    x = get_contract("dls-torch").encode(IMAGES)
    np.testing.assert_allclose(x, np.transpose(IMAGES / 255.0, (0, 3, 1, 2)), atol=1e-7)
    assert get_contract("dls-torch").sample_shape() == (3, 66, 200)


def test_dls_tf_is_albumentations_normalize_without_crop():
    c = get_contract("dls-tf")
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(c.encode(IMAGES), (IMAGES / 255.0 - mean) / std, atol=1e-5)
    assert (c.geometry.crop_top, c.geometry.crop_bottom) == (0, 480)
    assert get_contract("dls-tf-cropped").geometry == PILOTNET_GEOMETRY


def test_bm_legacy_output_mapping_and_its_inverse():
    c = get_contract("bm-torch-legacy")
    p = np.array([[0.5, 0.5], [2.0, 0.75]], np.float32)  # v = 6 p0, w = 6 (p1 - 0.5)
    v, w = 6 * p[:, 0], 6 * (p[:, 1] - 0.5)
    expected = np.stack([(v - 6.5) / 17.5, (w + 7.1) / 14.2], axis=1)
    np.testing.assert_allclose(c.decode(p), expected, atol=1e-6)
    np.testing.assert_allclose(c.encode_labels(c.decode(p)), p, atol=1e-5)


def test_yaml_contract_from_a_base(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("base: dls-torch\ncrop: [200, 480]\nsize: [66, 200]\nchannels: bgr\n"
                    "outputs: {order: [w, v], v: {min: 0, max: 10}, w: physical}\n")
    c = load_contract(path)
    assert c.layout == "nchw" and c.channels == "bgr" and c.geometry.crop_top == 200
    x = c.encode(IMAGES[:1])
    np.testing.assert_allclose(x[0, 0], IMAGES[0, :, :, 2] / 255.0, atol=1e-7)  # B first
    out = np.array([[0.5, 0.2]], np.float32)  # w first (physical), then v normalized 0..10
    v, w = 0.2 * 10, 0.5
    np.testing.assert_allclose(c.decode(out), [[(v - 6.5) / 17.5, (w + 7.1) / 14.2]], atol=1e-6)


@pytest.mark.parametrize("doc, match", [
    ({"bogus": 1}, "unknown key"),
    ({"scaling": "fancy"}, "scaling 'fancy'"),
    ({"layout": "nwch"}, "layout"),
    ({"crop": [300, 200]}, "crop rows"),
    ({"outputs": {"order": ["v", "v"]}}, "order"),
    ({"base": "nope"}, "unknown input contract"),
])
def test_malformed_contracts_are_one_line_errors(doc, match):
    with pytest.raises(BadInputError, match=match):
        load_contract(doc)


def test_missing_contract_file_and_unknown_preset(tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        load_contract(str(tmp_path / "absent.yaml"))
    with pytest.raises(BadInputError, match="choose a preset"):
        load_contract("dls-jax")


def test_size_from_the_model_and_geometry_crop():
    c = get_contract("dls-torch").sized_to((3, 100, 50))
    assert (c.geometry.height, c.geometry.width) == (100, 50)
    assert get_contract("pilotopt").sized_to((3, 100, 50)) == get_contract("pilotopt")  # fixed size
    frame = np.random.default_rng(2).integers(0, 256, (480, 640, 3)).astype(np.uint8)
    whole = Geometry(0, 480, 66, 200)
    top = frame.copy()
    top[:240] = 0  # only the sky half differs between these two frames
    assert not np.array_equal(crop_resize(frame, whole), crop_resize(top, whole))  # no crop sees the sky
    np.testing.assert_array_equal(crop_resize(frame, PILOTNET_GEOMETRY), crop_resize(top, PILOTNET_GEOMETRY))
