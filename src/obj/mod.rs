//! `ksplice-obj`, the drop-in for `ksplice-obj.pl`: its command line
//! ([`cli`]) and the commands with their marker-file protocol
//! ([`protocol`]).

pub mod cli;
pub mod protocol;
