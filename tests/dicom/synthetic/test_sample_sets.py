"""The sample archive is reproducible from its generator, byte for byte."""

import csv
import filecmp
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest


def load_generator(samples):
    spec = importlib.util.spec_from_file_location("make_samples", samples / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_samples"] = module
    spec.loader.exec_module(module)
    return module


def test_generator_reproduces_the_committed_samples(samples, tmp_path):
    written = load_generator(samples).make_samples(tmp_path)
    assert written
    for path in written:
        relative = path.relative_to(tmp_path)
        assert filecmp.cmp(path, samples / relative, shallow=False), f"{relative} differs from the committed file"


def test_the_script_is_the_command_line_of_the_one_synthetic_package(samples):
    from radtl.dicom.synthetic import SAMPLE_SETS, make_samples

    generator = load_generator(samples)
    assert generator.SAMPLE_SETS is SAMPLE_SETS and generator.make_samples is make_samples


@pytest.mark.parametrize(
    "name", ["cr", "dx", "ct", "mr", "enhanced", "broken", "btmr", "bone_age", "grazpedwri_dx", "covid19_radiography"]
)
def test_every_documented_set_is_registered(samples, name):
    assert name in load_generator(samples).SAMPLE_SETS


TASK_FILES = {
    "btmr/Training/*/Tr-*.dcm": 96,
    "btmr/Testing/*/Te-*.dcm": 24,
    "bone_age/boneage-training-dataset/*.dcm": 96,
    "grazpedwri_dx/images_part1/*.dcm": 48,
    "grazpedwri_dx/images_part2/*.dcm": 48,
    "covid19_radiography/COVID/images/COVID-*.dcm": 40,
    "covid19_radiography/Normal/images/Normal-*.dcm": 56,
    "covid19_radiography/Lung_Opacity/images/Lung_Opacity-*.dcm": 4,
}


def test_task_sets_have_the_public_datasets_layouts(samples):
    tasks = samples / "tasks"
    assert {pattern: len(list(tasks.glob(pattern))) for pattern in TASK_FILES} == TASK_FILES
    classes = ["glioma", "meningioma", "notumor", "pituitary"]
    assert sorted(p.name for p in (tasks / "btmr" / "Testing").iterdir()) == classes
    with open(tasks / "bone_age" / "boneage-training-dataset.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", "boneage", "male"] and {r["male"] for r in rows} == {"True", "False"}
    assert {f"{r['id']}.dcm" for r in rows} == {p.name for p in tasks.glob("bone_age/boneage-training-dataset/*.dcm")}
    with open(tasks / "grazpedwri_dx" / "dataset.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["osteopenia"] for r in rows) == [""] * 56 + ["1"] * 40
    assert {r["filestem"] for r in rows} == {p.stem for p in tasks.glob("grazpedwri_dx/images_part*/*.dcm")}


# dciodvfy (dicom3tools) checks each object against its IOD. The one accepted finding:
# PS3.3 C.11.1.1.1 requires 8 or 16 bits for a Modality LUT entry, while dciodvfy wants the
# declared bits to match the largest LUT value (0xbb8 needs 12).
ACCEPTED_FINDINGS = {"ct/ct_modality_lut.dcm": "LUT Descriptor number of bits = 16 but maximum LUT Data value"}


def valid_samples(samples):
    return sorted(p for p in samples.rglob("*.dcm") if "broken" not in p.parts)


@pytest.mark.skipif(
    shutil.which("dciodvfy") is None and not os.environ.get("RADTL_REQUIRE_TOOLS"),
    reason="dicom3tools (dciodvfy) not installed; .ci/run installs it and sets RADTL_REQUIRE_TOOLS=1",
)
def test_samples_are_valid_dicom_for_their_iod(samples):
    assert shutil.which("dciodvfy"), "RADTL_REQUIRE_TOOLS is set but dciodvfy is missing (apt-get install dicom3tools)"
    for path in valid_samples(samples):
        report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True).stderr
        accepted = ACCEPTED_FINDINGS.get(path.relative_to(samples).as_posix(), "\0")
        errors = [line for line in report.splitlines() if line.startswith("Error") and accepted not in line]
        assert errors == [], f"{path.relative_to(samples)}: {errors}"
