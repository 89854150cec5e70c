//! The exit statuses of every tool and the environment it reads, one
//! [`Epilogue`] per tool: `--help` shows it after the options
//! ([`Epilogue::help`]), the man pages as their EXIT STATUS and
//! ENVIRONMENT sections ([`super::docs`]).

use crate::create::{EXIT_INTERRUPTED as CREATE_INTERRUPTED, EXIT_NO_CHANGES};
use crate::update::{EXIT_ABORTED, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK};

/// One exit status of a tool and what it means.
#[derive(Debug, Clone, Copy)]
pub struct ExitStatus {
    /// The status.
    pub code: u8,
    /// What it means; a `\n` is where `--help` breaks the line (the man
    /// page joins the lines).
    pub meaning: &'static str,
}

/// What a tool's `--help` says after its options: its exit statuses and
/// the environment variables it reads.
#[derive(Debug, Clone, Copy)]
pub struct Epilogue {
    /// The exit statuses, in increasing order.
    pub exit: &'static [ExitStatus],
    /// The environment variables the tool reads, with the line breaks of
    /// `--help` (whose first line starts with the label).
    pub environment: &'static str,
    /// Whether the variables are only for testing (to fake the kernel).
    pub for_testing: bool,
}

/// Width of the status column of `--help`.
const CODE_WIDTH: usize = 4;

impl Epilogue {
    /// The text `--help` prints after the options:
    ///
    /// ```text
    /// Exit status:
    ///   0    meaning
    ///   130  a meaning
    ///        on two lines
    ///
    /// Environment ...
    /// ```
    pub fn help(&self) -> String {
        let indent = format!("\n{}", " ".repeat(2 + CODE_WIDTH + 1));
        let mut out = String::from("Exit status:");
        for s in self.exit {
            let meaning = s.meaning.replace('\n', &indent);
            out.push_str(&format!("\n  {:<CODE_WIDTH$} {meaning}", s.code));
        }
        if !self.environment.is_empty() {
            let label = if self.for_testing {
                "Environment (for testing)"
            } else {
                "Environment"
            };
            out.push_str(&format!("\n\n{label}: {}", self.environment));
        }
        out
    }

    /// The environment paragraph of the man page, on one line.
    pub fn man_environment(&self) -> String {
        let note = if self.for_testing {
            "For testing: "
        } else {
            ""
        };
        format!("{note}{}", one_line(self.environment))
    }
}

/// A string's lines joined into one, for the man page (which fills its
/// own lines).
pub fn one_line(text: &str) -> String {
    text.split('\n').collect::<Vec<_>>().join(" ")
}

/// ksplice-create (the codes of [`crate::create`]; 2 is clap's usage
/// error, as the Perl tool's pod2usage).
pub const CREATE: Epilogue = Epilogue {
    exit: &[
        ExitStatus {
            code: 0,
            meaning: "the update tarball is written (with --prebuild: the snap build is done)",
        },
        ExitStatus {
            code: 1,
            meaning: "error (the reason is printed: the patch does not apply, the build\nfails, a change is refused); the source tree is restored",
        },
        ExitStatus {
            code: 2,
            meaning: "bad usage (an unknown option, a missing argument)",
        },
        ExitStatus {
            code: EXIT_NO_CHANGES as u8,
            meaning: "no changes detected: the patch changes no code that can be\npatched at run time (the reason is printed)",
        },
        ExitStatus {
            code: CREATE_INTERRUPTED as u8,
            meaning: "interrupted (SIGINT, SIGTERM); the source tree is restored",
        },
        ExitStatus {
            code: 255,
            meaning: "error with --raw-errors: the first line of the error output is the\nabort code (OTHER), then the message",
        },
    ],
    environment: "CONCURRENCY_LEVEL (the default of -j), KSPLICE_DATA_DIR\n(where Makefile.ksplice and kmodsrc are; default: PREFIX/share/ksplice).",
    for_testing: false,
};

/// ksplice-apply.
pub const APPLY: Epilogue = Epilogue {
    exit: &[
        ExitStatus {
            code: EXIT_OK,
            meaning: "applied (or already applied); with --all-installed, every installed\nupdate applied",
        },
        ExitStatus {
            code: EXIT_ERROR,
            meaning: "error (bad update, wrong kernel, a module failed to load, bad usage);\nthe modules loaded so far are unloaded; with --install nothing is kept",
        },
        ExitStatus {
            code: EXIT_ABORTED,
            meaning: "the kernel refused the update (the reason is printed); its modules\nare unloaded",
        },
        ExitStatus {
            code: EXIT_INTERRUPTED,
            meaning: "interrupted; the modules loaded so far are unloaded",
        },
    ],
    environment: "KSPLICE_SYSFS (/sys), KSPLICE_PROC (/proc),
KSPLICE_STATE (/var/run/ksplice), KSPLICE_LIB (/var/lib/ksplice: installed updates),
KSPLICE_INSMOD (insmod), KSPLICE_RMMOD (rmmod).",
    for_testing: true,
};

/// ksplice-undo.
pub const UNDO: Epilogue = Epilogue {
    exit: &[
        ExitStatus {
            code: EXIT_OK,
            meaning: "reversed and unloaded",
        },
        ExitStatus {
            code: EXIT_ERROR,
            meaning: "error (not applied, not present, a module could not be unloaded,\nbad usage)",
        },
        ExitStatus {
            code: EXIT_ABORTED,
            meaning: "the kernel refused to reverse the update (the reason is printed);\nit stays applied",
        },
        ExitStatus {
            code: EXIT_INTERRUPTED,
            meaning: "interrupted before reversing; nothing changed (once the reversal\nhas started, a signal waits for the modules to be unloaded)",
        },
    ],
    environment: "KSPLICE_SYSFS (/sys), KSPLICE_STATE
(/var/run/ksplice), KSPLICE_LIB (/var/lib/ksplice), KSPLICE_RMMOD (rmmod).",
    for_testing: true,
};

/// ksplice-view.
pub const VIEW: Epilogue = Epilogue {
    exit: &[
        ExitStatus {
            code: EXIT_OK,
            meaning: "success (also for an update that is not in the kernel)",
        },
        ExitStatus {
            code: EXIT_ERROR,
            meaning: "error (an unreadable update or kernel state, bad usage)",
        },
    ],
    environment: "KSPLICE_SYSFS (/sys), KSPLICE_STATE (/var/run/ksplice).",
    for_testing: true,
};

/// ksplice-obj (as ksplice-obj.pl).
pub const OBJ: Epilogue = Epilogue {
    exit: &[
        ExitStatus {
            code: 0,
            meaning: "success",
        },
        ExitStatus {
            code: 1,
            meaning: "error (the file and the cause are printed), or bad usage (the usage\nnaming every command is printed)",
        },
    ],
    environment: "KSPLICE_VERBOSE (1: a line per action, 2: debugging),
KSPLICE_CONFIG_DIR (where System.map is), KSPLICE_KID (the update id),
KSPLICE_KERNEL_VERSION (the kernel version, for its table layouts),
KSPLICE_ALLOW_DATA_CHANGE, KSPLICE_DATA_IN_PLACE, LD and AR.",
    for_testing: false,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_aligns_the_meanings() {
        let text = APPLY.help();
        assert!(text.starts_with("Exit status:\n  0    applied"), "{text}");
        assert!(
            text.contains("bad usage);\n       the modules"),
            "continuation lines under the meaning: {text}"
        );
        assert!(text.contains("\n  130  interrupted"), "{text}");
        assert!(text.ends_with("KSPLICE_RMMOD (rmmod)."), "{text}");
    }

    #[test]
    fn every_tool_documents_success_and_error_in_order() {
        for e in [CREATE, APPLY, UNDO, VIEW, OBJ] {
            let codes: Vec<u8> = e.exit.iter().map(|s| s.code).collect();
            assert_eq!(codes[..2], [0, 1], "{codes:?}");
            assert!(codes.windows(2).all(|w| w[0] < w[1]), "{codes:?}");
            assert!(!e.environment.is_empty());
        }
        assert_eq!(one_line("a\nb"), "a b");
        assert!(
            VIEW.man_environment()
                .starts_with("For testing: KSPLICE_SYSFS")
        );
        assert!(OBJ.man_environment().starts_with("KSPLICE_VERBOSE"));
    }
}
