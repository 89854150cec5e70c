//! The update package: the tarball ksplice-create writes and the update
//! tools read ([`tarball`], the safe reader).

pub mod tarball;
