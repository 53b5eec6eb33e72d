//! notify as a wake-up hint: non-recursive watches on the directories the globs look at, one
//! inotify instance. Access events (including the tailer's own opens) are ignored; any other
//! event marks its paths changed (create, remove and rename also ask for a rescan); a rescan
//! event (queue overflow) asks for a full reconcile. When notify cannot be used (watch limit,
//! unsupported filesystem), the tailer silently relies on its stat reconcile alone.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use notify::{EventKind, RecursiveMode, Watcher};
use tracing::{debug, warn};

use crate::tail::Shared;

/// The watcher and the directories it watches.
pub(crate) struct Hints {
    watcher: Option<notify::RecommendedWatcher>,
    watched: BTreeSet<PathBuf>,
    has_warned: bool,
}

impl Hints {
    /// Starts a watcher feeding `shared`; without one, everything is polled.
    pub(crate) fn new(shared: Arc<Shared>) -> Hints {
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            handle(&shared, event);
        });
        let (watcher, has_warned) = match watcher {
            Ok(watcher) => (Some(watcher), false),
            Err(err) => {
                warn!(error = %err, "file notifications unavailable: polling only");
                (None, true)
            }
        };
        Hints {
            watcher,
            watched: BTreeSet::new(),
            has_warned,
        }
    }

    /// Watches exactly `dirs`.
    pub(crate) fn sync(&mut self, dirs: &BTreeSet<PathBuf>) {
        let Some(watcher) = &mut self.watcher else {
            return;
        };
        if *dirs == self.watched {
            return;
        }
        for gone in self.watched.difference(dirs) {
            drop(watcher.unwatch(gone));
        }
        let mut watched = BTreeSet::new();
        for dir in dirs {
            if self.watched.contains(dir) {
                watched.insert(dir.clone());
                continue;
            }
            match watcher.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    watched.insert(dir.clone());
                }
                Err(err) => {
                    if !self.has_warned {
                        self.has_warned = true;
                        warn!(dir = %dir.display(), error = %err, "cannot watch directory: polling it");
                    } else {
                        debug!(dir = %dir.display(), error = %err, "cannot watch directory: polling it");
                    }
                }
            }
        }
        // Directories that could not be watched are retried at the next change of the set.
        self.watched = watched;
    }
}

fn handle(shared: &Shared, event: notify::Result<notify::Event>) {
    let event = match event {
        Ok(event) => event,
        Err(err) => {
            debug!(error = %err, "notify error: reconciling everything");
            shared.update(|inbox| inbox.is_rescan = true);
            return;
        }
    };
    if event.need_rescan() {
        shared.update(|inbox| inbox.is_rescan = true);
        return;
    }
    let is_structural = match event.kind {
        EventKind::Access(_) => return,
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(notify::event::ModifyKind::Name(_)) => true,
        _ => false,
    };
    shared.update(|inbox| {
        for path in event.paths {
            inbox.hint(path, is_structural);
        }
    });
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, CreateKind, Flag, ModifyKind};

    use super::*;

    fn inbox_after(event: notify::Event) -> (Vec<(PathBuf, bool)>, bool) {
        let shared = Shared::default();
        handle(&shared, Ok(event));
        let inbox = shared.inbox.lock().unwrap();
        (inbox.hints.clone(), inbox.is_rescan)
    }

    #[test]
    fn overflow_asks_for_a_full_reconcile() {
        let event = notify::Event::new(EventKind::Other).set_flag(Flag::Rescan);
        assert_eq!(inbox_after(event), (vec![], true));
    }

    #[test]
    fn own_opens_are_ignored_and_creations_are_structural() {
        let open = notify::Event::new(EventKind::Access(AccessKind::Any)).add_path("/l/a".into());
        assert_eq!(inbox_after(open), (vec![], false));
        let create =
            notify::Event::new(EventKind::Create(CreateKind::File)).add_path("/l/a".into());
        assert_eq!(inbox_after(create), (vec![("/l/a".into(), true)], false));
        let write = notify::Event::new(EventKind::Modify(ModifyKind::Any)).add_path("/l/a".into());
        assert_eq!(inbox_after(write), (vec![("/l/a".into(), false)], false));
    }
}
