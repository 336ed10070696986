"""The API's pure parts: the file framing the CLI sends, names, the OpenAPI
description built from the bag models."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import HTTPException
from vragent.api.app import _name, _split_files, create_app, description
from vragent.api.metrics import Metrics
from vragent.api.service import CommandService
from vragent.bags import models as _bag_models
from vragent.settings import Settings

BAG_MODELS = _bag_models()


def test_the_cli_file_framing_splits_back_into_named_files() -> None:
    body = b'[["a.json", 3], ["b.cfg", 0], ["c.json", 2]]\nabc\n\n{}'
    assert _split_files(body) == [("a.json", b"abc"), ("b.cfg", b""), ("c.json", b"{}")]
    for bad in (b"not json\nx", b'[["a", -1]]\n', b'[["a", "3"]]\nabc', b"[1]\n"):
        with pytest.raises(HTTPException) as info:
            _split_files(bad)
        assert info.value.status_code == 400


def test_names_from_clients_are_one_printable_segment() -> None:
    assert _name("../../etc/passwd") == "passwd"
    assert _name("a\x00b\nc") == "abc"
    assert _name("") == "request" and _name("/") == "request"
    assert len(_name("x" * 500)) == 80


def test_the_description_has_every_bag_model_and_requires_the_token(tmp_path: Path) -> None:
    settings = Settings(root=tmp_path)
    app = create_app(settings, CommandService(settings), Metrics(), token=lambda: "t" * 32)
    doc = description(app)
    schemas = doc["components"]["schemas"]
    for bag_type, model in BAG_MODELS.items():
        op = doc["paths"][f"/v1/bags/{bag_type}"]["post"]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{model.__name__}"
        # The endpoint fills in the type: not required in the body.
        assert "type" not in schemas[model.__name__].get("required", [])
    assert doc["security"] == [{"token": []}]
    assert "/v1/local/apply" not in doc["paths"]
    assert "/openapi.json" not in doc["paths"]

