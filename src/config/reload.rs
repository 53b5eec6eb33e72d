//! What a reload (SIGHUP) can change while the agent runs, and what needs a restart.
//!
//! [`Config::restart_only_changes`] destructures every field of [`Config`] (and of the parts
//! that are compared field by field) without `..`: a new field does not compile until it is
//! placed on one side or the other, so the warning cannot silently miss a setting.

use super::{Config, OutboxOptions};

impl Config {
    /// The settings that differ between `self` (running) and `new` (reloaded) but take effect
    /// only after a restart, by config key. Empty when the reload applies in full.
    pub fn restart_only_changes(&self, new: &Config) -> Vec<&'static str> {
        let Config {
            // Reloadable: the agent applies these at once.
            path: _,
            host: _,
            window: _,
            sources: _,
            rules: _,
            rule_files: _,
            summary: _,
            tail: _,
            warnings: _,
            incidents: _,
            time_intervals: _,
            suppression: _,
            // Applied to the running delivery task (`DeliveryHandle::reconfigure`); a webhook
            // added or removed starts or stops the task (`agent::sinks`).
            dingtalk: _,
            // Restart-only: the outbox is opened once.
            state_dir,
            outbox,
            // The listener is bound once; `ready_max_failing` is applied at once.
            metrics,
            // Added or removed: the sink starts or stops (`agent::sinks`). Changed: restart-only,
            // each instance's outbox is opened once, and labels are the alerts' identity
            // (changing them mid-incident would fire new alerts beside the old).
            alertmanager,
        } = self;
        let mut changed = Vec::new();
        if *state_dir != new.state_dir {
            changed.push("state_dir");
        }
        let OutboxOptions { max_entries } = outbox;
        if *max_entries != new.outbox.max_entries {
            changed.push("outbox");
        }
        if metrics.map(|m| m.listen) != new.metrics.map(|m| m.listen) {
            changed.push("metrics.listen");
        }
        if let (Some(old), Some(new)) = (alertmanager, &new.alertmanager)
            && old != new
        {
            changed.push("alertmanager");
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(dir: &std::path::Path, yaml: &str) -> Config {
        let path = dir.join("logding.yaml");
        std::fs::write(&path, yaml).expect("write config");
        super::super::load_with(&path, false, &|_| None).expect("valid config")
    }

    const BASE: &str = "state_dir: state
window: 1m
dingtalk: {webhook: 'http://127.0.0.1:9/robot/send?access_token=made-up', keyword: alert}
sources: [{name: app, paths: [/var/log/app/*.log]}]
rules: [{name: oom, pattern: OutOfMemoryError}]
";

    #[track_caller]
    fn check(edit: (&str, &str), expected: &[&str]) {
        let dir = tempfile::tempdir().expect("temp dir");
        let old = load(dir.path(), BASE);
        let new = load(dir.path(), &BASE.replace(edit.0, edit.1));
        assert_eq!(old.restart_only_changes(&new), expected);
    }

    #[test]
    fn reloadable_settings_need_no_restart_and_the_others_are_named() {
        check(("window: 1m", "window: 2m"), &[]);
        check(("OutOfMemoryError", "StackOverflowError"), &[]);
        check(("state_dir: state", "state_dir: other"), &["state_dir"]);
        // Every dingtalk setting applies to the running delivery task.
        check(("keyword: alert", "keyword: alarm"), &[]);
        check(("keyword: alert", "keyword: alert, timeout: 3s"), &[]);
        check(
            ("window: 1m", "window: 1m\noutbox: {max_entries: 7}"),
            &["outbox"],
        );
    }

    #[test]
    fn a_sink_added_or_removed_applies_and_a_changed_alertmanager_needs_a_restart() {
        let am = |labels: &str| {
            format!(
                "window: 1m\nalertmanager: {{urls: ['http://127.0.0.1:9093'], labels: {{{labels}}}}}"
            )
        };
        // Added (the agent starts it), then removed (the agent stops it).
        check(("window: 1m", &am("app: a")), &[]);
        let dir = tempfile::tempdir().expect("temp dir");
        let with = load(dir.path(), &BASE.replace("window: 1m", &am("app: a")));
        let without = load(dir.path(), BASE);
        assert_eq!(with.restart_only_changes(&without), [] as [&str; 0]);
        // Changed: its labels are the alerts' identity.
        let other = load(dir.path(), &BASE.replace("window: 1m", &am("app: b")));
        assert_eq!(with.restart_only_changes(&other), ["alertmanager"]);
        // DingTalk removed from a config that keeps Alertmanager: applied too.
        let dingtalk = BASE
            .lines()
            .find(|l| l.starts_with("dingtalk:"))
            .expect("dingtalk line");
        let alone = load(
            dir.path(),
            &BASE
                .replace("window: 1m", &am("app: a"))
                .replace(dingtalk, ""),
        );
        assert_eq!(with.restart_only_changes(&alone), [] as [&str; 0]);
    }
}
