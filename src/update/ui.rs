//! The update tools' output conventions: progress, warnings, errors
//! (`--raw-errors`), and the kernel's abort causes and conflicts in words.

/// Output conventions shared by the tools.
#[derive(Debug, Clone)]
pub struct Ui {
    /// The tool's name, for messages.
    pub tool: &'static str,
    /// `-v` minus `-q`.
    pub verbose: i32,
    /// `--raw-errors`: machine-readable errors on stderr.
    pub raw_errors: bool,
}

impl Ui {
    /// A progress line on stdout (not with `-q`).
    pub fn progress(&self, msg: &str) {
        if self.verbose >= 0 {
            println!("{msg}");
        }
    }

    /// Prints an error: `TOOL: message` (`OTHER` and the message with `--raw-errors`).
    pub fn error(&self, e: &anyhow::Error) {
        let msg = format!("{e:#}");
        if self.raw_errors {
            eprintln!("OTHER\n{msg}");
        } else {
            eprintln!("{}: {msg}", self.tool);
        }
    }

    /// Prints a warning (not with `--raw-errors`, which keeps stderr for errors).
    pub fn warn(&self, msg: &str) {
        if !self.raw_errors {
            eprintln!("{}: warning: {msg}", self.tool);
        }
    }

    /// Prints the kernel's abort cause: the code with `--raw-errors`, else
    /// `headline` and the explanation; the processes using changed code for
    /// `code_busy` (the raw `conflicts` lines with `--raw-errors`).
    pub fn abort(&self, headline: &str, cause: &str, explanation: &str, conflicts: &str) {
        eprint!(
            "{}",
            abort_text(self, headline, cause, explanation, conflicts)
        );
    }
}

/// What [`Ui::abort`] prints on stderr.
fn abort_text(ui: &Ui, headline: &str, cause: &str, explanation: &str, conflicts: &str) -> String {
    let busy = cause == "code_busy";
    if ui.raw_errors {
        let raw = if busy { conflicts } else { "" };
        return format!("{cause}\n{raw}");
    }
    let mut out = format!("{}: {headline}:\n{explanation}\n", ui.tool);
    if busy {
        out.push_str(&describe_conflicts(conflicts));
    }
    out
}

/// The `conflicts` attribute (`NAME PID SYMBOL...` per line) in words.
pub fn describe_conflicts(raw: &str) -> String {
    let mut out = String::new();
    for l in raw.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 3 {
            continue;
        }
        out.push_str(&format!(
            "Process {} (pid {}) is using code the update changes:\n",
            w[0], w[1]
        ));
        for s in &w[2..] {
            out.push_str(&format!("  {s}\n"));
        }
    }
    out
}

/// What the kernel's abort cause means when applying an update.
pub fn explain_apply(cause: &str) -> &'static str {
    match cause {
        "no_match" => {
            "The running kernel's code does not match the code the update was built against: \
             the update must be built from the exact source, configuration and compiler of the running kernel."
        }
        "code_busy" => {
            "A function the update replaces was always in use (on some thread's stack) \
             when Ksplice tried to switch to the new code; try again later."
        }
        "bad_system_map" => {
            "The System.map given to ksplice-create does not belong to the running kernel."
        }
        "failed_to_find" => "A symbol the update needs could not be found in the running kernel.",
        "already_reversed" => {
            "This update was already applied and reversed; unload its modules before applying it again."
        }
        "missing_export" => {
            "A symbol the update expects the kernel to export is not exported by the running kernel."
        }
        "unexpected_running_task" => {
            "The check of the threads' stacks failed unexpectedly; this is a bug in Ksplice."
        }
        "target_not_loaded" => {
            "A module the update changes is not loaded; use --partial to apply the update to the loaded code only."
        }
        "out_of_memory" => "The kernel ran out of memory.",
        "call_failed" => {
            "A hook of the update refused the application (likely a bug in the patch)."
        }
        "unexpected" => "The kernel's Ksplice core failed unexpectedly; this is a bug in Ksplice.",
        "ftrace_failed" => {
            "The kernel's function tracer refused to redirect a replaced function \
             (another live patch or ftrace user modifies its entry, or ftrace is disabled)."
        }
        "no_labels" => {
            "The new code uses jump labels (static keys) and the update has no labels module to keep them \
             in step with their keys (an update made by an older ksplice-create); rebuild it with this ksplice-create."
        }
        "ok" => {
            "The update was not applied, for no reason the kernel reported; this is a bug in Ksplice."
        }
        _ => "The kernel reported an abort cause this version of ksplice-apply does not know.",
    }
}

/// What the kernel's abort cause means when reversing an update.
pub fn explain_undo(cause: &str) -> &'static str {
    match cause {
        "code_busy" => {
            "A function the update changed was always in use (on some thread's stack) \
             when Ksplice tried to switch back to the old code; try again later."
        }
        "module_busy" => "The update's modules are in use by another module (see lsmod).",
        "unexpected_running_task" => {
            "The check of the threads' stacks failed unexpectedly; this is a bug in Ksplice."
        }
        "out_of_memory" => "The kernel ran out of memory.",
        "call_failed" => "A hook of the update refused the reversal (likely a bug in the patch).",
        "cold_update_loaded" => {
            "The update was applied with --partial and a module it changes was loaded since; \
             unload that module before undoing the update."
        }
        "already_reversed" => "The update is already reversed.",
        "ftrace_failed" => "The kernel's function tracer failed while the update was reversed.",
        "unexpected" => "The kernel's Ksplice core failed unexpectedly; this is a bug in Ksplice.",
        "ok" => {
            "The update was not reversed, for no reason the kernel reported; this is a bug in Ksplice."
        }
        _ => explain_undo_apply_only(cause),
    }
}

/// Causes only applying an update should report, when reversing one.
fn explain_undo_apply_only(cause: &str) -> &'static str {
    match cause {
        "no_match" => {
            "The kernel found code that does not match the update while reversing it; \
             this is a bug in Ksplice."
        }
        "bad_system_map" => {
            "The kernel found the update's System.map wrong while reversing it; this is a bug in Ksplice."
        }
        "failed_to_find" => {
            "The kernel could not find a symbol while reversing the update; this is a bug in Ksplice."
        }
        "missing_export" => {
            "The kernel found an export missing while reversing the update; this is a bug in Ksplice."
        }
        "target_not_loaded" => {
            "The kernel found a module the update changes not loaded while reversing it; \
             this is a bug in Ksplice."
        }
        "no_labels" => {
            "The kernel found the update's labels module missing while reversing it; this is a bug in Ksplice."
        }
        _ => "The kernel reported an abort cause this version of ksplice-undo does not know.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The cause names of every `cause_names[] = { [X] = "name", ... }`
    /// initializer in the kernel module's sources (`kmodsrc/`, `.c` and `.h`).
    fn kernel_cause_names() -> Vec<String> {
        let mut names = Vec::new();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("kmodsrc");
        for file in c_sources(&root) {
            let text = std::fs::read_to_string(&file).unwrap();
            for table in cause_tables(&text) {
                for n in quoted_after_equals(table) {
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
            }
        }
        names
    }

    /// The `.c` and `.h` files under `dir`, recursively.
    fn c_sources(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(c_sources(&p));
            } else if matches!(p.extension().and_then(|x| x.to_str()), Some("c" | "h")) {
                out.push(p);
            }
        }
        out
    }

    /// The bodies (between the braces) of the `cause_names[]` initializers.
    fn cause_tables(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find("cause_names[]") {
            rest = &rest[i + "cause_names[]".len()..];
            let decl = rest.trim_start();
            let Some(init) = decl.strip_prefix('=') else {
                continue;
            };
            let Some(body) = init.trim_start().strip_prefix('{') else {
                continue;
            };
            if let Some(end) = body.find("};") {
                out.push(&body[..end]);
            }
        }
        out
    }

    /// Every `= "name"` of an initializer body.
    fn quoted_after_equals(body: &str) -> Vec<String> {
        body.split('=')
            .skip(1)
            .filter_map(|s| s.trim_start().strip_prefix('"'))
            .filter_map(|s| s.split('"').next())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn explanations_cover_every_cause() {
        let causes = kernel_cause_names();
        assert!(
            causes.len() >= 10,
            "the cause_names[] table of kmodsrc/ was not found or not parsed: {causes:?}"
        );
        for c in &causes {
            assert_ne!(explain_apply(c), explain_apply("no_such_cause"), "{c}");
            assert_ne!(explain_undo(c), explain_undo("no_such_cause"), "{c}");
        }
        for c in ["module_busy", "cold_update_loaded"] {
            assert_ne!(explain_undo(c), explain_undo("no_such_cause"), "{c}");
        }
        assert!(explain_apply("target_not_loaded").contains("--partial"));
        assert_ne!(explain_undo("code_busy"), explain_undo("no_such_cause"));
        assert!(describe_conflicts("bash 42 do_sys other\nidle 0\n").contains("bash (pid 42)"));
    }

    #[test]
    fn cause_table_parsing() {
        let src = "static const char *const cause_names[];\n\
                   static const char *const cause_names[] = {\n\t[OK] = \"ok\",\n\
                   \t[NO_MATCH] = \"no_match\", /* x */\n};\nint y = \"z\";\n";
        let tables = cause_tables(src);
        assert_eq!(tables.len(), 1);
        assert_eq!(quoted_after_equals(tables[0]), ["ok", "no_match"]);
    }

    #[test]
    fn code_busy_names_the_busy_tasks() {
        let ui = Ui {
            tool: "ksplice-undo",
            verbose: 0,
            raw_errors: false,
        };
        let raw = "sshd 77 uptime_proc_show uptime_helper\n";
        let text = abort_text(&ui, "not reversed", "code_busy", "busy.", raw);
        assert_eq!(
            text,
            "ksplice-undo: not reversed:\nbusy.\n\
             Process sshd (pid 77) is using code the update changes:\n  \
             uptime_proc_show\n  uptime_helper\n"
        );
        let raw_ui = Ui {
            raw_errors: true,
            ..ui.clone()
        };
        let text = abort_text(&raw_ui, "not reversed", "code_busy", "busy.", raw);
        assert_eq!(text, format!("code_busy\n{raw}"));
        let text = abort_text(&raw_ui, "not reversed", "no_match", "x", raw);
        assert_eq!(text, "no_match\n");
        let text = abort_text(&ui, "h", "no_match", "x.", raw);
        assert_eq!(text, "ksplice-undo: h:\nx.\n");
    }
}
