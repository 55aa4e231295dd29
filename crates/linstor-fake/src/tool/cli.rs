//! `linstor-database`'s command line as picocli parses it in LinstorDatabaseTool, the same in
//! 1.25.1 and 1.33.3 (recorded: tool/05, 05b, 06, 07 of both): two subcommands with `-c/--config-directory` and one path;
//! there is no `--help` or `--version` option. Every argument error prints a message and the
//! usage on stderr and the process **exits 0**.

/// Where the tool reads `linstor.toml` unless told otherwise.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/linstor";

/// `export-db` or `import-db`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Export,
    Import,
}

impl Command {
    /// The subcommand's name.
    pub fn name(self) -> &'static str {
        match self {
            Command::Export => "export-db",
            Command::Import => "import-db",
        }
    }

    /// The picocli command class (stack traces).
    pub fn class(self) -> &'static str {
        match self {
            Command::Export => "CmdExportDb",
            Command::Import => "CmdImportDb",
        }
    }
}

/// What the arguments ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    Run {
        command: Command,
        config_dir: String,
        file: String,
    },
    /// `message` (if any) and the usage of `command` (or the top level) on stderr, exit 0.
    Usage {
        message: Option<String>,
        command: Option<Command>,
    },
}

/// The usage picocli prints.
pub fn usage(command: Option<Command>) -> &'static str {
    match command {
        None => {
            "Usage: linstor-database [COMMAND]\nCommands:\n  export-db  Exports the given database to a given file\n  \
             import-db  Imports a previously exported linstor database-dump to the\n               \
             databasegiven by the configured linstor.toml\n"
        }
        Some(Command::Export) => {
            "Usage: linstor-database export-db [-c=<configurationDirectory>] <dbExportPath>\n\
             Exports the given database to a given file\n      \
             <dbExportPath>   Path to the exported database file\n  \
             -c, --config-directory=<configurationDirectory>\n                       \
             Configuration directory for the controller\n"
        }
        Some(Command::Import) => {
            "Usage: linstor-database import-db [-c=<configurationDirectory>] <dbExportPath>\n\
             Imports a previously exported linstor database-dump to the databasegiven by\n\
             the configured linstor.toml\n      \
             <dbExportPath>   Path to the exported database file\n  \
             -c, --config-directory=<configurationDirectory>\n                       \
             Configuration directory for the controller\n"
        }
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Invocation {
    let Some(first) = args.first() else {
        return Invocation::Usage {
            message: None,
            command: None,
        };
    };
    let command = match first.as_str() {
        "export-db" => Command::Export,
        "import-db" => Command::Import,
        other if other.starts_with('-') => {
            return Invocation::Usage {
                message: Some(format!("Unknown option: '{other}'")),
                command: None,
            };
        }
        other => {
            return Invocation::Usage {
                message: Some(format!("Unmatched argument at index 0: '{other}'")),
                command: None,
            };
        }
    };
    let mut config_dir = DEFAULT_CONFIG_DIR.to_string();
    let mut files: Vec<String> = Vec::new();
    let mut unknown: Option<String> = None;
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "-c" | "--config-directory" => match args.get(i + 1) {
                Some(v) => {
                    config_dir = v.clone();
                    i += 1;
                }
                None => {
                    return Invocation::Usage {
                        message: Some(
                            "Missing required parameter for option '--config-directory' (<configurationDirectory>)"
                                .into(),
                        ),
                        command: Some(command),
                    };
                }
            },
            _ if a.starts_with("--config-directory=") => config_dir = a["--config-directory=".len()..].into(),
            _ if a.starts_with("-c") && a.len() > 2 => config_dir = a[2..].trim_start_matches('=').into(),
            "--" => {
                files.extend(args[i + 1..].iter().cloned());
                break;
            }
            _ if a.starts_with('-') && a.len() > 1 => {
                unknown.get_or_insert_with(|| a.to_string());
            }
            _ => files.push(a.to_string()),
        }
        i += 1;
    }
    // picocli reports a missing positional before an unknown option (recorded: 05b vs 07)
    let message = match (files.as_slice(), unknown) {
        ([], _) => "Missing required parameter: '<dbExportPath>'".to_string(),
        (_, Some(opt)) => format!("Unknown option: '{opt}'"),
        ([file], None) => {
            return Invocation::Run {
                command,
                config_dir,
                file: file.clone(),
            };
        }
        ([_, extra, ..], None) => format!("Unmatched argument at index 2: '{extra}'"),
    };
    Invocation::Usage {
        message: Some(message),
        command: Some(command),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Invocation {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn option_spellings() {
        for args in [
            &["import-db", "-c", "/t", "f"][..],
            &["import-db", "--config-directory=/t", "f"],
            &["import-db", "-c=/t", "f"],
            &["import-db", "f", "-c", "/t"],
            &["import-db", "-c", "/t", "--", "f"],
        ] {
            assert_eq!(
                p(args),
                Invocation::Run {
                    command: Command::Import,
                    config_dir: "/t".into(),
                    file: "f".into()
                },
                "{args:?}"
            );
        }
    }
}
