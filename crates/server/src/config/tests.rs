//! Tests of config loading: defaults, partial files, unknown keys, bad values, the example file.

use super::*;

#[test]
fn empty_file_is_the_defaults() {
    assert_eq!(Config::parse("").unwrap(), Config::default());
}

#[test]
fn partial_file_keeps_other_defaults() {
    let config = Config::parse("[server]\nlisten = \"127.0.0.1:9000\"\n").unwrap();
    assert_eq!(config.server.listen, "127.0.0.1:9000".parse().unwrap());
    assert_eq!(
        config.server.drain_timeout,
        ServerConfig::default().drain_timeout
    );
    assert_eq!(config.log, LogConfig::default());
    assert_eq!(config.whiteboard, convene_whiteboard::Config::default());
}

#[test]
fn durations_are_human_strings() {
    let config = Config::parse("[server]\ndrain_timeout = \"1m 30s\"\n").unwrap();
    assert_eq!(config.server.drain_timeout, Duration::from_secs(90));
}

#[test]
fn unknown_key_is_named_with_a_suggestion_and_line() {
    let problems = Config::parse("[server]\nlisen = \"127.0.0.1:9000\"\n").unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let p = &problems[0];
    assert_eq!(p.path, "server.lisen");
    assert_eq!(p.line, Some(2));
    assert!(p.message.contains("did you mean `listen`"), "{}", p.message);
}

#[test]
fn unknown_section_is_rejected() {
    let problems = Config::parse("[sever]\nlisten = \"127.0.0.1:9000\"\n").unwrap_err();
    assert_eq!(problems[0].path, "sever");
    assert!(
        problems[0].message.contains("did you mean `server`"),
        "{}",
        problems[0].message
    );
}

#[test]
fn every_problem_is_reported() {
    let text = "[server]\nlisten = \"not an address\"\ndrain_timeout = \"soon\"\n[log]\nformat = \"xml\"\ncolour = true\n";
    let problems = Config::parse(text).unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "server.listen",
            "server.drain_timeout",
            "log.format",
            "log.colour"
        ],
        "{problems:#?}"
    );
    assert_eq!(problems[0].line, Some(2));
    assert_eq!(problems[3].line, Some(6));
}

#[test]
fn syntax_error_has_a_line() {
    let problems = Config::parse("[server]\nlisten = \n").unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].line, Some(2));
}

#[test]
fn example_file_parses_and_documents_the_defaults() {
    let text = include_str!("../../../../convene.example.toml");
    let config = Config::parse(text).unwrap_or_else(|p| panic!("{p:#?}"));
    // The example shows every default: so it must parse to exactly the defaults.
    assert_eq!(config, Config::default());
}

#[test]
fn example_file_names_every_key() {
    // Every key of the effective config must appear in the example, so the example documents everything.
    let text = include_str!("../../../../convene.example.toml");
    let rendered: toml::Table = toml::from_str(&Config::default().to_toml()).unwrap();
    let example: toml::Table = toml::from_str(&uncomment(text)).unwrap();
    for (section, value) in &rendered {
        let keys = value.as_table().into_iter().flat_map(|t| t.keys());
        for key in keys {
            let present = example
                .get(section)
                .and_then(|s| s.as_table())
                .is_some_and(|s| s.contains_key(key));
            assert!(
                present,
                "convene.example.toml does not document {section}.{key}"
            );
        }
    }
}

/// The example may show optional keys commented out as `# key = value`; count those as documented.
fn uncomment(text: &str) -> String {
    text.lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest
                    .split_once(" = ")
                    .is_some_and(|(key, _)| is_bare_key(key)) =>
            {
                rest
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn printed_config_parses_back() {
    let config = Config::default();
    assert_eq!(Config::parse(&config.to_toml()).unwrap(), config);
}

fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
