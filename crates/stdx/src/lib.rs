#![doc = include_str!("../README.md")]

mod error;
pub mod escape;
pub mod fs;
pub mod hex;
pub mod ring;
pub mod text;

pub use error::Error;
pub use ring::Ring;
