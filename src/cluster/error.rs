//! Why an operator's request (`baton switchover`, `--clear`) failed: one
//! variant per case the core tells apart, displayed with the exact text
//! `baton` has always shown (the CLI and the tests match on it).

use std::fmt;

use crate::vrrp::State;

/// An operator request that could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorError {
    /// No local instance of that name.
    UnknownInstance { instance: String },
    /// The request needs a master to serve it, and none is live.
    NoMaster { instance: String },
    /// The node asked to serve the request is not (or no longer) master.
    NotMaster { node: String, instance: String },
    /// The target already is the master.
    AlreadyMaster { target: String, instance: String },
    /// The target is not a configured peer.
    UnknownNode { target: String },
    /// The target is a peer but not alive on the channel.
    NotConnected { target: String },
    /// The target does not report the instance.
    TargetLacksInstance { target: String, instance: String },
    /// The target reports the instance in another state than BACKUP
    /// (FAULT, typically).
    TargetNotBackup {
        target: String,
        instance: String,
        state: State,
    },
    /// The target's connection closed while the request was pending.
    TargetLeft { target: String },
    /// The target did not take over within `switchover_timeout`.
    Timeout { target: String },
    /// The master refused the request; its reason as it sent it (the wire
    /// carries text, so a refusal from any version reads the same).
    Refused(String),
    /// The operator cleared the instance's pin before the switchover was
    /// done.
    Cancelled { instance: String },
    /// The node runs without the cluster channel.
    NoCluster,
    /// Neither a target nor `--clear` was given.
    MissingTarget,
}

impl fmt::Display for OperatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use OperatorError::*;
        match self {
            UnknownInstance { instance } => write!(f, "no instance named {instance}"),
            NoCluster => {
                f.write_str("switchover needs the cluster channel ([cluster] in the configuration)")
            }
            MissingTarget => f.write_str("give --to NODE or --clear"),
            Cancelled { instance } => {
                write!(f, "switchover of {instance} called off by --clear")
            }
            NoMaster { instance } => write!(f, "no live master of {instance} on the channel"),
            NotMaster { node, instance } => write!(f, "{node} is not master of {instance}"),
            AlreadyMaster { target, instance } => {
                write!(f, "{target} is already master of {instance}")
            }
            UnknownNode { target } => write!(f, "unknown node {target}"),
            NotConnected { target } => write!(f, "{target} is not alive on the channel"),
            TargetLacksInstance { target, instance } => {
                write!(f, "{target} has no instance {instance}")
            }
            TargetNotBackup {
                target,
                instance,
                state,
            } => write!(f, "{target} is {state} for {instance}, not BACKUP"),
            TargetLeft { target } => write!(f, "{target} left the cluster before taking over"),
            Timeout { target } => write!(f, "timed out waiting for {target} to take over"),
            Refused(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for OperatorError {}

impl From<OperatorError> for String {
    fn from(e: OperatorError) -> String {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_the_ones_baton_always_showed() {
        let s = |x: &str| x.to_string();
        let cases = [
            (
                OperatorError::NoCluster,
                "switchover needs the cluster channel ([cluster] in the configuration)",
            ),
            (OperatorError::MissingTarget, "give --to NODE or --clear"),
            (
                OperatorError::Cancelled {
                    instance: s("VI_1"),
                },
                "switchover of VI_1 called off by --clear",
            ),
            (
                OperatorError::UnknownInstance {
                    instance: s("VI_9"),
                },
                "no instance named VI_9",
            ),
            (
                OperatorError::NoMaster {
                    instance: s("VI_1"),
                },
                "no live master of VI_1 on the channel",
            ),
            (
                OperatorError::NotMaster {
                    node: s("n1"),
                    instance: s("VI_1"),
                },
                "n1 is not master of VI_1",
            ),
            (
                OperatorError::AlreadyMaster {
                    target: s("n0"),
                    instance: s("VI_1"),
                },
                "n0 is already master of VI_1",
            ),
            (
                OperatorError::UnknownNode { target: s("nope") },
                "unknown node nope",
            ),
            (
                OperatorError::NotConnected { target: s("n2") },
                "n2 is not alive on the channel",
            ),
            (
                OperatorError::TargetLacksInstance {
                    target: s("n2"),
                    instance: s("VI_1"),
                },
                "n2 has no instance VI_1",
            ),
            (
                OperatorError::TargetNotBackup {
                    target: s("n2"),
                    instance: s("VI_1"),
                    state: State::Fault,
                },
                "n2 is FAULT for VI_1, not BACKUP",
            ),
            (
                OperatorError::TargetLeft { target: s("n1") },
                "n1 left the cluster before taking over",
            ),
            (
                OperatorError::Timeout { target: s("n1") },
                "timed out waiting for n1 to take over",
            ),
            (
                OperatorError::Refused(s("n2 is FAULT for VI_1, not BACKUP")),
                "n2 is FAULT for VI_1, not BACKUP",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
            assert_eq!(String::from(e), text);
        }
    }
}
