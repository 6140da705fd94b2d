//! Generates the baseline server's gRPC code from `proto/`, with a vendored
//! protoc as `crates/proto` does.

use std::{error::Error, path::PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("proto");
    let file = proto_root.join("sigil_bench/v1/baseline.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_with_config(config, &[file], &[proto_root])?;
    Ok(())
}
