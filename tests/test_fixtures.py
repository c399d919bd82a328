"""The committed fixtures are the ones the external reference was computed on."""

import hashlib

import pytest

from faceperf.fixtures import faces as fixture_faces


@pytest.mark.parametrize("name", fixture_faces.image_names())
def test_fixture_image_is_the_one_the_reference_describes(name):
    entry = fixture_faces.reference_document()["images"][name]
    path = fixture_faces.image_path(name)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    image = fixture_faces.load_image(name)
    assert image.shape == (entry["height"], entry["width"], 3)
    assert len(fixture_faces.reference_faces(name)) == len(entry["faces"]) >= 1
