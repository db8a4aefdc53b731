//! Adapters from the library's ports to AWS services.

pub mod dynamodb;
pub mod kms;
pub mod s3;
pub mod staging;
pub mod trails;
