//! Typed models, their inputs and enums (from `austa-model`), plus the inputs only this crate can
//! build.

pub use austa_model::model::*;

pub use crate::repo::tasy::TasySyncStart;
