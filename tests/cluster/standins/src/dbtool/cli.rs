//! The command line of `linstor-database`, parsed the way picocli does it in
//! `LinstorDatabaseTool` (REFERENCE.md §3), including its trap: bad arguments print the usage on
//! stderr and the process still exits 0.

/// Where the tool reads `linstor.toml` unless told otherwise.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/linstor";

/// `export-db` or `import-db`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subcommand {
    ExportDb,
    ImportDb,
}

impl Subcommand {
    fn name(self) -> &'static str {
        match self {
            Subcommand::ExportDb => "export-db",
            Subcommand::ImportDb => "import-db",
        }
    }

    /// The picocli command class, for stack traces.
    pub fn class(self) -> &'static str {
        match self {
            Subcommand::ExportDb => "CmdExportDb",
            Subcommand::ImportDb => "CmdImportDb",
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Run a subcommand.
    Run {
        command: Subcommand,
        config_dir: String,
        file: String,
    },
    /// `-h`/`--help`: usage on stdout, exit 0.
    Help { command: Option<Subcommand> },
    /// `-V`/`--version`: version on stdout, exit 0.
    Version,
    /// Anything else: `error` (if any) and the usage on stderr, exit 0.
    Usage {
        error: Option<String>,
        command: Option<Subcommand>,
    },
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Invocation {
    let Some(first) = args.first() else {
        return Invocation::Usage {
            error: None,
            command: None,
        };
    };
    let command = match first.as_str() {
        "export-db" => Subcommand::ExportDb,
        "import-db" => Subcommand::ImportDb,
        "-h" | "--help" => return Invocation::Help { command: None },
        "-V" | "--version" => return Invocation::Version,
        other if other.starts_with('-') => {
            return Invocation::Usage {
                error: Some(format!("Unknown option: '{other}'")),
                command: None,
            };
        }
        other => {
            return Invocation::Usage {
                error: Some(format!("Unmatched argument at index 0: '{other}'")),
                command: None,
            };
        }
    };
    let usage = |error: String| Invocation::Usage {
        error: Some(error),
        command: Some(command),
    };
    let mut config_dir = DEFAULT_CONFIG_DIR.to_string();
    let mut file: Option<String> = None;
    let mut i = 1;
    while i < args.len() {
        let arg = &args[i];
        match arg.as_str() {
            "-h" | "--help" => {
                return Invocation::Help {
                    command: Some(command),
                };
            }
            "-c" | "--config-directory" => match args.get(i + 1) {
                Some(v) => {
                    config_dir = v.clone();
                    i += 1;
                }
                None => {
                    return usage("Missing required parameter for option '--config-directory' (<configurationDirectory>)".into());
                }
            },
            a if a.starts_with("--config-directory=") => {
                config_dir = a["--config-directory=".len()..].to_string()
            }
            a if a.starts_with("-c") && a.len() > 2 => {
                config_dir = a[2..].trim_start_matches('=').to_string()
            }
            "--" => {
                i += 1;
                for rest in &args[i..] {
                    if file.replace(rest.clone()).is_some() {
                        return usage(format!("Unmatched argument at index {i}: '{rest}'"));
                    }
                    i += 1;
                }
                break;
            }
            a if a.starts_with('-') && a.len() > 1 => return usage(format!("Unknown option: '{a}'")),
            a => {
                if file.is_some() {
                    return usage(format!("Unmatched argument at index {i}: '{a}'"));
                }
                file = Some(a.to_string());
            }
        }
        i += 1;
    }
    match file {
        Some(file) => Invocation::Run {
            command,
            config_dir,
            file,
        },
        None => usage("Missing required parameter: '<dbExportPath>'".into()),
    }
}

/// The usage text picocli prints (for the top-level command or a subcommand).
pub fn usage_text(command: Option<Subcommand>) -> String {
    match command {
        None => "Usage: linstor-database [COMMAND]\n\
                 Commands:\n  \
                 export-db  Exports the given database to a given file\n  \
                 import-db  Imports a previously exported linstor database-dump to the\n               \
                 databasegiven by the configured linstor.toml\n"
            .into(),
        Some(c) => {
            let description = match c {
                Subcommand::ExportDb => "Exports the given database to a given file",
                Subcommand::ImportDb => {
                    "Imports a previously exported linstor database-dump to the databasegiven by\nthe configured linstor.toml"
                }
            };
            format!(
                "Usage: linstor-database {} [-c=<configurationDirectory>] <dbExportPath>\n{description}\n      \
                 <dbExportPath>   Path to the exported database file\n  \
                 -c, --config-directory=<configurationDirectory>\n                       \
                 Configuration directory for the controller\n",
                c.name()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Invocation {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn run(command: Subcommand, dir: &str, file: &str) -> Invocation {
        Invocation::Run {
            command,
            config_dir: dir.into(),
            file: file.into(),
        }
    }

    #[test]
    fn subcommands_with_every_option_spelling() {
        assert_eq!(
            p(&["export-db", "/backup/x.json"]),
            run(Subcommand::ExportDb, "/etc/linstor", "/backup/x.json")
        );
        for args in [
            &["import-db", "-c", "/t", "f"][..],
            &["import-db", "--config-directory", "/t", "f"],
            &["import-db", "--config-directory=/t", "f"],
            &["import-db", "-c=/t", "f"],
            &["import-db", "-c/t", "f"],
            &["import-db", "f", "-c", "/t"],
            &["import-db", "-c", "/t", "--", "f"],
        ] {
            assert_eq!(p(args), run(Subcommand::ImportDb, "/t", "f"), "{args:?}");
        }
    }

    #[test]
    fn bad_arguments_are_the_usage_trap() {
        let usage = |a: &[&str]| matches!(p(a), Invocation::Usage { .. });
        assert_eq!(
            p(&[]),
            Invocation::Usage {
                error: None,
                command: None
            }
        );
        assert!(usage(&["export"]));
        assert!(usage(&["--config-directory", "/x", "export-db", "f"]));
        assert!(usage(&["export-db"]));
        assert!(usage(&["export-db", "a", "b"]));
        assert!(usage(&["export-db", "-c"]));
        assert!(usage(&["import-db", "--verbose", "f"]));
        match p(&["export-db"]) {
            Invocation::Usage { error, command } => {
                assert_eq!(
                    error.as_deref(),
                    Some("Missing required parameter: '<dbExportPath>'")
                );
                assert!(
                    usage_text(command)
                        .starts_with("Usage: linstor-database export-db [-c=<configurationDirectory>]")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn help_and_version() {
        assert_eq!(p(&["-h"]), Invocation::Help { command: None });
        assert_eq!(
            p(&["import-db", "--help"]),
            Invocation::Help {
                command: Some(Subcommand::ImportDb)
            }
        );
        assert_eq!(p(&["-V"]), Invocation::Version);
        assert!(usage_text(None).contains("export-db  Exports the given database"));
    }
}
