//! Adapters from the library's ports to AWS services.

pub mod dynamodb;
pub mod trails;
