//! # austa-model
//!
//! The Austa domain's types, below the repositories: the 15 models and 32 enums of the platform
//! ([`model`]), their inputs (`New*`, `*Patch`) with the rules a value must meet ([`validate`]), the
//! decoding of inputs from JSON with errors that name the field and never the value ([`input`]), the
//! classification of every stored column ([`classification`]), and who may ask ([`identity`]).
//!
//! No I/O happens here: a type is built and checked before anything is read or written.

// The derive writes `::austa_model::...` paths, which must also resolve inside this crate.
extern crate self as austa_model;

pub mod classification;
pub mod identity;
pub mod input;
pub mod model;
pub mod record;
pub mod validate;
