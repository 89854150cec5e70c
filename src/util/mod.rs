//! Small pieces shared by every program: atomic writes and locks
//! ([`fsutil`]), Kbuild-style output ([`log`]) and the termination-signal
//! flag every long run stops on ([`interrupt`]).

pub mod fsutil;
pub mod interrupt;
pub mod log;
