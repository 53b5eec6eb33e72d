//! The one integration-test binary (matklad): every module below is a suite.
mod absence;
mod architecture;
mod config;
mod delivery;
mod dingtalk;
mod fleet;
mod fleet_relay;
mod full_disk;
mod metrics;
mod msrv;
mod package;
mod pipeline;
mod ruletest;
mod scan_cmd;
mod silence;
mod support;
mod tail;
