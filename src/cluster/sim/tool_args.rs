//! Command-line parsing of the simulated `linstor-database`, like picocli: `export-db|import-db
//! [-c DIR] FILE`; errors come back with the usage text (which the tool prints before exiting 0).

pub(crate) const USAGE: &str = "Usage: linstor-database [-hV] [COMMAND]
  -h, --help      Show this help message and exit.
  -V, --version   Print version information and exit.
Commands:
  export-db  Exports the database to a file
  import-db  Imports the database from a file";

pub(crate) fn sub_usage(cmd: &str) -> String {
    format!(
        "Usage: linstor-database {cmd} [-hV] [-c=<configurationDirectory>] <file>
      <file>   Path to the export file
  -c, --config-directory=<configurationDirectory>
               Path to the directory containing linstor.toml
  -h, --help   Show this help message and exit.
  -V, --version
               Print version information and exit."
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmd {
    Export,
    Import,
}

/// Parses arguments like picocli; `Err` is the message printed before the usage.
pub(crate) fn parse(args: &[String]) -> Result<(Cmd, String, String), (String, String)> {
    let Some((first, rest)) = args.split_first() else {
        return Err((String::new(), USAGE.into()));
    };
    let cmd = match first.as_str() {
        "export-db" => Cmd::Export,
        "import-db" => Cmd::Import,
        other => return Err((format!("Unmatched argument at index 0: '{other}'"), USAGE.into())),
    };
    let usage = sub_usage(first);
    let mut dir = "/etc/linstor".to_string();
    let mut files = Vec::new();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        if a == "-c" || a == "--config-directory" {
            dir = it.next().cloned().ok_or_else(|| {
                (
                    "Missing required parameter for option '--config-directory' (<configurationDirectory>)"
                        .to_string(),
                    usage.clone(),
                )
            })?;
        } else if let Some(d) = a
            .strip_prefix("--config-directory=")
            .or_else(|| a.strip_prefix("-c="))
        {
            dir = d.to_string();
        } else if a.starts_with('-') && a.len() > 1 {
            return Err((format!("Unknown option: '{a}'"), usage));
        } else {
            files.push(a.clone());
        }
    }
    match files.as_slice() {
        [file] => Ok((cmd, dir, file.clone())),
        [] => Err(("Missing required parameter: '<file>'".into(), usage)),
        [_, extra, ..] => Err((format!("Unmatched argument at index 2: '{extra}'"), usage)),
    }
}
