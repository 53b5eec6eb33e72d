//! What a case run produced, window by window: the data [`runner`](super::runner) builds and
//! [`compare`](super::compare) checks, apart from both so that neither depends on the other.

use crate::summary::Summary;

/// A window that closed while a case ran.
#[derive(Clone, Debug)]
pub struct ClosedWindow {
    /// What the window produced.
    pub summary: Summary,
    /// The message a person would read (the DingTalk markdown or text of the first body), when
    /// a message would be sent (some rule reached its threshold).
    pub message: Option<String>,
    /// Everything `contains:` looks in: `render_text` and the text of every JSON body.
    pub haystack: String,
    /// The title of the first body (markdown), or its first line (text), when a message would
    /// be sent.
    pub title: Option<String>,
    /// What the incident stage said about it.
    pub incidents: WindowIncidents,
}

/// The incident stage's view of one closed window, by rule name (sorted, each once).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowIncidents {
    /// Rules whose incident started with this window.
    pub new: Vec<String>,
    /// Rules with hits in this window whose incident was already open.
    pub ongoing: Vec<String>,
    /// Rules whose incident resolved when this window closed or after, before the next.
    pub resolved: Vec<String>,
    /// The message the incident stage sent when the window closed (`None`: held).
    pub sent: Option<Summary>,
}
