//! Output that looks like LINSTOR's: log lines in its logback format on stdout and in
//! `./logs/<module>.log`, error report files, and the stack trace the JVM prints when the
//! tool's command throws (REFERENCE.md §3: the tool writes its logs to `./logs`).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// One log line: `2026-11-24 10:41:20.112 [main] INFO  LINSTOR/linstor-db - SYSTEM - text`.
pub fn format_line(at: DateTime<Utc>, level: &str, module: &str, message: &str) -> String {
    format!(
        "{} [main] {level:<5} LINSTOR/{module} - SYSTEM - {message}",
        at.format("%Y-%m-%d %H:%M:%S%.3f")
    )
}

/// A Java exception with its cause, as the stand-in reports failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaException {
    /// Fully qualified class name.
    pub class: String,
    pub message: String,
    /// `at ...` frames, innermost first.
    pub frames: Vec<String>,
}

impl JavaException {
    /// An exception of `class` with a few frames of the code that threw it.
    pub fn new(class: &str, message: impl Into<String>, frames: &[&str]) -> Self {
        Self {
            class: class.into(),
            message: message.into(),
            frames: frames.iter().map(|f| f.to_string()).collect(),
        }
    }

    /// What the JVM prints on stderr when the picocli command `command` threw this.
    pub fn stack_trace(&self, command: &str) -> String {
        const PICOCLI: [&str; 9] = [
            "picocli.CommandLine.executeUserObject(CommandLine.java:2050)",
            "picocli.CommandLine.access$1500(CommandLine.java:148)",
            "picocli.CommandLine$RunLast.executeUserObjectOfLastSubcommandWithSameParent(CommandLine.java:2530)",
            "picocli.CommandLine$RunLast.handle(CommandLine.java:2522)",
            "picocli.CommandLine$RunLast.handle(CommandLine.java:2484)",
            "picocli.CommandLine$AbstractParseResultHandler.handleParseResult(CommandLine.java:2342)",
            "picocli.CommandLine.parseWithHandlers(CommandLine.java:2727)",
            "picocli.CommandLine.parseWithHandler(CommandLine.java:2662)",
            "com.linbit.linstor.core.LinstorDatabaseTool.main(LinstorDatabaseTool.java:275)",
        ];
        let mut out = format!(
            "Exception in thread \"main\" picocli.CommandLine$ExecutionException: Error while calling command \
             (com.linbit.linstor.core.LinstorDatabaseTool${command}@5f2108b5): {}: {}\n",
            self.class, self.message
        );
        for f in PICOCLI {
            out.push_str(&format!("\tat {f}\n"));
        }
        out.push_str(&format!("Caused by: {}: {}\n", self.class, self.message));
        for f in &self.frames {
            out.push_str(&format!("\tat {f}\n"));
        }
        out.push_str(&format!(
            "\tat com.linbit.linstor.core.LinstorDatabaseTool${command}.call(LinstorDatabaseTool.java:97)\n"
        ));
        out.push_str(&format!("\t... {} more\n", PICOCLI.len()));
        out
    }
}

/// LINSTOR's logger for one module: stdout plus a file under the log directory.
pub struct JavaLog {
    module: String,
    dir: PathBuf,
    file: File,
}

impl JavaLog {
    /// Creates `dir` and opens `dir/<module>.log` for appending; fails like logback does on a
    /// read-only filesystem.
    pub fn open(module: &str, dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let file = File::options()
            .create(true)
            .append(true)
            .open(dir.join(format!("{module}.log")))?;
        Ok(Self {
            module: module.into(),
            dir: dir.to_path_buf(),
            file,
        })
    }

    pub fn info(&mut self, message: &str) {
        self.emit("INFO", message);
    }

    pub fn warn(&mut self, message: &str) {
        self.emit("WARN", message);
    }

    pub fn error(&mut self, message: &str) {
        self.emit("ERROR", message);
    }

    fn emit(&mut self, level: &str, message: &str) {
        let line = format_line(Utc::now(), level, &self.module, message);
        // as Java's System.out: an output nobody reads any more (an exec connection that went
        // away) does not stop the tool, where println! would panic on EPIPE
        let _ = writeln!(std::io::stdout().lock(), "{line}");
        // the log file is best effort, as logback's file appender is
        let _ = writeln!(self.file, "{line}");
    }

    /// Writes an `ErrorReport-<id>.log` file for `exception` and logs where it went, as
    /// LINSTOR's error reporter does; returns the report id.
    pub fn report(&mut self, exception: &JavaException, command: &str) -> String {
        let now = Utc::now();
        let id = format!("{:08X}-00000-000000", now.timestamp() as u32);
        let body = format!(
            "ERROR REPORT {id}\n\n\
             ============================================================\n\n\
             Application:                        LINBIT\u{ae} LINSTOR\n\
             Module:                             {}\n\
             Error time:                         {}\n\n\
             Reported error:\n===============\n\n\
             Category:                           Exception\n\
             Class name:                         {}\n\
             Error message:                      {}\n\n\
             Call backtrace:\n\n{}",
            self.module,
            now.format("%Y-%m-%d %H:%M:%S"),
            exception.class.rsplit('.').next().unwrap_or(&exception.class),
            exception.message,
            exception.stack_trace(command),
        );
        let _ = std::fs::write(self.dir.join(format!("ErrorReport-{id}.log")), body);
        self.error(&format!(
            "{} [Report number {id}]",
            exception.message.lines().next().unwrap_or_default()
        ));
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn lines_look_like_logback() {
        let at =
            Utc.with_ymd_and_hms(2026, 11, 24, 10, 41, 20).unwrap() + chrono::Duration::milliseconds(112);
        assert_eq!(
            format_line(at, "INFO", "linstor-db", "Export finished"),
            "2026-11-24 10:41:20.112 [main] INFO  LINSTOR/linstor-db - SYSTEM - Export finished"
        );
    }

    #[test]
    fn stack_traces_name_the_cause() {
        let e = JavaException::new("java.io.IOException", "boom", &["a.b.C.d(C.java:1)"]);
        let t = e.stack_trace("CmdImportDb");
        assert!(t.starts_with("Exception in thread \"main\" picocli.CommandLine$ExecutionException"));
        assert!(t.contains("Caused by: java.io.IOException: boom\n\tat a.b.C.d(C.java:1)\n"));
    }

    #[test]
    fn logs_and_reports_land_in_the_log_directory() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let mut log = JavaLog::open("linstor-db", &logs).unwrap();
        log.info("hello");
        let id = log.report(&JavaException::new("x.Y", "bad", &[]), "CmdExportDb");
        let text = std::fs::read_to_string(logs.join("linstor-db.log")).unwrap();
        assert!(text.contains("INFO  LINSTOR/linstor-db - SYSTEM - hello"));
        assert!(text.contains(&format!("[Report number {id}]")));
        assert!(logs.join(format!("ErrorReport-{id}.log")).exists());
    }
}
