//! What the Debian package and a new user rely on: `logding init` writes a starter that
//! passes `check`, completions and man pages are generated, `logding schema` is the committed
//! schema. (The package itself is built, installed and purged by `packaging/test-deb.sh`.)

use std::path::Path;

use crate::support::cli::run;

#[test]
fn init_writes_a_config_and_rules_for_the_chosen_stacks_that_pass_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run(
        dir.path(),
        &["init", "--java", "--nginx", "--postgres", "conf"],
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    for file in [
        "logding.yaml",
        "rules/java.yaml",
        "rules/nginx.yaml",
        "rules/postgres.yaml",
    ] {
        assert!(
            dir.path().join("conf").join(file).exists(),
            "{file} missing"
        );
    }
    assert!(!dir.path().join("conf/rules/go.yaml").exists());
    assert!(out.stdout.contains("ok: "), "{}", out.stdout);

    let check = run(dir.path(), &["check", "-c", "conf/logding.yaml"]);
    assert_eq!(check.code, Some(0), "{}{}", check.stdout, check.stderr);
    let text = std::fs::read_to_string(dir.path().join("conf/logding.yaml")).expect("written");
    assert!(text.starts_with(
        "# yaml-language-server: $schema=/usr/share/logding/schema/logding.schema.json\n"
    ));
    assert!(text.contains("- name: app") && text.contains("- name: postgres"));
    assert!(!text.contains("- name: go"));
}

#[test]
fn init_without_a_flag_guesses_the_stacks_from_the_log_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path().join("var-log");
    for sub in ["nginx", "postgresql", "tomcat9", "apt"] {
        std::fs::create_dir_all(logs.join(sub)).expect("mkdir");
    }
    let root = logs.to_str().expect("utf-8 path");
    let out = run(dir.path(), &["init", "--log-root", root, "conf"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("java, nginx, postgres"),
        "{}",
        out.stdout
    );
    let text = std::fs::read_to_string(dir.path().join("conf/logding.yaml")).expect("written");
    assert!(
        text.contains(&format!("paths: [{root}/tomcat9/*.log]")),
        "{text}"
    );
    assert!(text.contains(&format!("{root}/nginx/access.log")), "{text}");
    assert_eq!(
        run(dir.path(), &["check", "-c", "conf/logding.yaml"]).code,
        Some(0)
    );
}

#[test]
fn init_with_nothing_recognised_writes_the_java_starter_and_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let out = run(
        dir.path(),
        &["init", "--log-root", empty.to_str().expect("utf-8"), "."],
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("no known stack"), "{}", out.stdout);
    assert!(dir.path().join("rules/java.yaml").exists());
}

#[test]
fn init_never_overwrites_without_force() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("logding.yaml"), "mine\n").expect("write");
    let out = run(dir.path(), &["init", "--go"]);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("not overwriting"), "{}", out.stderr);
    assert!(out.stderr.contains("logding.yaml`"), "{}", out.stderr);
    let kept = std::fs::read_to_string(dir.path().join("logding.yaml")).expect("read");
    assert_eq!(kept, "mine\n");
    assert!(!dir.path().join("rules").exists());

    let forced = run(dir.path(), &["init", "--go", "--force"]);
    assert_eq!(forced.code, Some(0), "{}{}", forced.stdout, forced.stderr);
}

#[test]
fn completions_cover_every_subcommand_in_each_shell() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (shell, marker) in [
        ("bash", "complete -F _logding"),
        ("zsh", "#compdef logding"),
        ("fish", "complete -c logding"),
    ] {
        let out = run(dir.path(), &["completions", shell]);
        assert_eq!(out.code, Some(0), "{shell}: {}", out.stderr);
        assert!(out.stdout.contains(marker), "{shell}");
        for sub in [
            "run",
            "check",
            "explain",
            "scan",
            "send-test",
            "init",
            "schema",
        ] {
            assert!(out.stdout.contains(sub), "{shell} lacks {sub}");
        }
        assert!(
            !out.stdout.contains("tail-probe"),
            "{shell} shows a hidden command"
        );
    }
}

#[test]
fn man_prints_the_page_and_writes_one_per_subcommand() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run(dir.path(), &["man"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.starts_with(".ie") || out.stdout.contains(".TH logding 1"));
    assert!(out.stdout.contains("send\\-test"), "{}", out.stdout);

    let pages = run(dir.path(), &["man", "--dir", "man"]);
    assert_eq!(pages.code, Some(0), "{}", pages.stderr);
    for page in [
        "logding.1",
        "logding-run.1",
        "logding-check.1",
        "logding-init.1",
    ] {
        assert!(dir.path().join("man").join(page).exists(), "{page}");
    }
}

#[test]
fn schema_prints_the_committed_schemas() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (args, file) in [
        (&["schema"][..], "schema/logding.schema.json"),
        (&["schema", "rules"][..], "schema/rules.schema.json"),
    ] {
        let out = run(root, args);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let committed = std::fs::read_to_string(root.join(file)).expect("committed");
        assert_eq!(out.stdout, committed, "{file}");
    }
}
