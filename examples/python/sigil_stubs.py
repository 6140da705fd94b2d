"""Generates Python stubs for Sigil's API from proto/ with grpcio-tools and
imports them. Nothing generated is committed: each run writes its own copy,
so the stubs can never drift from the .proto files.
"""

import importlib
import importlib.resources
import pathlib
import sys
import tempfile

from grpc_tools import protoc

PROTO_ROOT = pathlib.Path(__file__).resolve().parents[2] / "proto"
MODULES = ("session", "token", "issuer", "validator", "edge_token", "event")


def generate(out_dir=None):
    """Runs protoc over proto/sigil/v1/*.proto into out_dir (a new temporary
    directory when None), puts it on sys.path and returns it."""
    out = pathlib.Path(out_dir or tempfile.mkdtemp(prefix="sigil-stubs-"))
    out.mkdir(parents=True, exist_ok=True)
    # grpcio-tools ships the well-known types (google/protobuf/*.proto).
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    files = sorted(str(path.relative_to(PROTO_ROOT)) for path in PROTO_ROOT.glob("sigil/v1/*.proto"))
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--proto_path={well_known}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            *files,
        ]
    )
    if code != 0:
        raise RuntimeError(f"protoc failed with status {code} on {files}")
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    importlib.invalidate_caches()
    return out


def load(out_dir=None):
    """Generates the stubs and returns a namespace of the sigil.v1 modules:
    `pb.issuer_pb2`, `pb.issuer_pb2_grpc`, `pb.validator_pb2`, …"""
    generate(out_dir)
    modules = {}
    for name in MODULES:
        modules[f"{name}_pb2"] = importlib.import_module(f"sigil.v1.{name}_pb2")
        modules[f"{name}_pb2_grpc"] = importlib.import_module(f"sigil.v1.{name}_pb2_grpc")
    return type("SigilV1", (), modules)
