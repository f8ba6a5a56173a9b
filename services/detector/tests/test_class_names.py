from __future__ import annotations

from services.detector.class_names import load_class_names


def test_load_class_names(coco_names_path, tmp_path):
    names = load_class_names(coco_names_path)
    assert len(names) == 80 and names[0] == "person" and names[16] == "dog"
    assert names[79] == "toothbrush"
    path = tmp_path / "two.names"
    path.write_text("cat\r\n\n dog \n")
    assert load_class_names(path) == ["cat", "dog"]
