//! Generated protobuf and gRPC code for the etcd v3 API (`etcdserverpb`, `mvccpb`) and
//! rkube's member-to-member service (`rkubepeerpb`), from `src/store/proto/`.

#![allow(clippy::all, missing_docs, non_snake_case)]

pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

pub mod rkubepeerpb {
    tonic::include_proto!("rkubepeerpb");
}
