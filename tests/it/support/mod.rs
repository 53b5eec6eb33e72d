//! Helpers shared by the integration suites.

pub(crate) mod agent;
pub(crate) mod cli;
pub(crate) mod dingtalk_server;
pub(crate) mod logs;
