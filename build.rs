//! Compiles the store's `.proto` files with `protox` (pure Rust, so no system `protoc`) and
//! generates tonic (or, under `--cfg madsim`, madsim-tonic) services from the descriptors;
//! also the API server's subset of Kubernetes' protobuf schema (messages only).

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = "src/store/proto";
    let files = ["kv.proto", "rpc.proto", "peer.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={proto_dir}/{f}");
    }
    let descriptors = protox::compile(files, [proto_dir])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out.join("store_descriptor.bin");
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .skip_protoc_run()
        // Our own rerun-if-changed lines above name the files by their real paths; tonic's
        // would name them relative to the include dir and mark the build dirty every time.
        .emit_rerun_if_changed(false)
        .compile_protos(&files, &[proto_dir])?;
    compile_apiserver_protos(&out)?;
    Ok(())
}

/// The Kubernetes object messages `src/apiserver/protobuf.rs` decodes request bodies with.
/// Maps are `BTreeMap`s so that decoding is deterministic.
fn compile_apiserver_protos(out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = "src/apiserver/proto";
    let files = ["kubernetes.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={proto_dir}/{f}");
    }
    let descriptors = protox::compile(files, [proto_dir])?;
    let descriptor_path = out.join("apiserver_descriptor.bin");
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_build::configure()
        .build_client(false)
        .build_server(false)
        .btree_map(["."])
        .file_descriptor_set_path(&descriptor_path)
        .skip_protoc_run()
        .emit_rerun_if_changed(false)
        .compile_protos(&files, &[proto_dir])?;
    Ok(())
}
