//! Sigil's gRPC contract: the code generated from `proto/`, the encoded file
//! descriptor set for reflection, conversions between wire and domain types,
//! and [`status`], the one place where a domain error becomes a gRPC status.

/// Conversions between wire and domain types.
pub mod convert;
/// Conversions for events.
pub mod event;
/// Conversions for JWT templates, keys and claims.
pub mod jwt;
/// Domain errors as gRPC statuses.
pub mod status;

/// Generated types of package `sigil.v1`. Use as `pb::Session`.
pub mod v1 {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("sigil.v1");
}

/// The encoded `FileDescriptorSet` of every Sigil proto file, for server
/// reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("sigil_descriptor");
