//! Checking a parsed test file against the configuration it tests: every rule, source and
//! `group` name it uses must exist there.

use crate::config::walk::Ctx;
use crate::config::{Config, Diagnostic};
use crate::ruletest::format::{Named, TestFile};

/// Checks a parsed file against the configuration it tests: rule and source names exist and
/// `group` keys are `group_by` names of their rule.
///
/// # Errors
///
/// Every problem found.
pub fn resolve(file: &TestFile, config: &Config) -> Result<(), Vec<Diagnostic>> {
    let mut ctx = Ctx::new(file.path.clone(), file.text.clone(), None);
    let mut push = |named: &Named, message: String, help: String| {
        ctx.error_at(named.position, named.name.len(), message, Some(help));
    };
    let source_names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
    let rule_names: Vec<&str> = config
        .rules
        .rules()
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    for case in &file.cases {
        for input in &case.input {
            match &input.source {
                None if config.sources.len() != 1 => push(
                    &Named {
                        name: String::new(),
                        position: input.position,
                    },
                    format!(
                        "input needs a `source`: the config has {} sources",
                        config.sources.len()
                    ),
                    format!("add `source:` with one of: {}", source_names.join(", ")),
                ),
                Some(source) if !source_names.contains(&source.name.as_str()) => push(
                    source,
                    format!("unknown source `{}`", source.name),
                    did_you_mean(&source.name, &source_names),
                ),
                _ => {}
            }
        }
        for absent in case.absent.iter().flatten() {
            let watches = &config.incidents.absence;
            let (known, kind): (Vec<&str>, &str) = if absent.is_source {
                let sources = watches.stalls.iter().map(|s| s.source.as_str());
                (sources.collect(), "source with `source_stalled`")
            } else {
                (
                    watches.rules.iter().map(|r| r.name.as_str()).collect(),
                    "absence rule",
                )
            };
            if !known.contains(&absent.name.name.as_str()) {
                push(
                    &absent.name,
                    format!("no {kind} `{}`", absent.name.name),
                    did_you_mean(&absent.name.name, &known),
                );
            }
        }
        for expect in &case.expect {
            let named = expect.fires.iter().map(|f| &f.rule);
            for rule in named
                .chain(&expect.not_firing)
                .chain(expect.incidents.named())
            {
                if !rule_names.contains(&rule.name.as_str()) {
                    push(
                        rule,
                        format!("unknown rule `{}`", rule.name),
                        did_you_mean(&rule.name, &rule_names),
                    );
                }
            }
            for fire in &expect.fires {
                let Some(id) = config.rules.find(&fire.rule.name) else {
                    continue;
                };
                let group_by = &config.rules.get(id).group_by;
                for (key, _) in &fire.group {
                    if !group_by.contains(key) {
                        push(
                            &fire.rule,
                            format!("rule `{}` has no `group_by` named `{key}`", fire.rule.name),
                            if group_by.is_empty() {
                                "the rule has no `group_by`; remove `group`".into()
                            } else {
                                format!("its `group_by` is: {}", group_by.join(", "))
                            },
                        );
                    }
                }
            }
        }
    }
    if ctx.diagnostics.is_empty() {
        Ok(())
    } else {
        Err(ctx.diagnostics)
    }
}

fn did_you_mean(name: &str, known: &[&str]) -> String {
    match crate::config::suggest(name, known) {
        Some(k) => format!("did you mean `{k}`?"),
        None if known.is_empty() => "the config defines none".into(),
        None => format!("known: {}", known.join(", ")),
    }
}
