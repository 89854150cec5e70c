//! The update package: the tarball ksplice-create writes and the update
//! tools read. Its files and their format are defined here, once:
//!
//! - [`API_VERSION`], the `api-version` file;
//! - [`contents`], the modules in loading order, and [`names`], the rule
//!   that names them;
//! - [`utsname`], the kernel the update was built for;
//! - [`patched`], the functions it changes, from the per-object reports;
//! - [`open`], an update opened and checked ([`Update`]), with the typed
//!   [`UpdateError`]s of [`error`];
//! - [`tarball`], the safe reader of the gzip'ed tar.

pub mod contents;
pub mod error;
pub mod names;
pub mod open;
pub mod patched;
pub mod tarball;
pub mod utsname;

pub use contents::Contents;
pub use error::UpdateError;
pub use open::Update;
pub use utsname::Utsname;

/// The update format's version, written to `api-version` by ksplice-create
/// and checked by the tools (`--api-version` prints it).
pub const API_VERSION: &str = "2";
