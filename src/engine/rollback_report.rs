//! What a finished rollback says about the steps it undid: each keeps the times it ran at, and
//! its message says what is true after the rollback ("controller running" of a migration that
//! was rolled back is no longer true of k8s). Steps whose result stays (the export, the backup,
//! the verification of that export) keep their message.

use crate::model::{StepName, StepState};

/// What a step a rollback undid says afterwards; `url` is the database the controller runs on
/// again.
pub(super) fn undone_message(step: StepName, before: Option<&str>, url: Option<&str>) -> Option<String> {
    let url = url.unwrap_or("its original database");
    let after = match step {
        StepName::PreparePod => "undone: the migration pod was deleted".to_string(),
        StepName::StopController => format!("undone: the controller was started again on {url}"),
        StepName::PrepareTarget | StepName::Import => {
            "undone: the controller does not use what was written into the k8s backend".to_string()
        }
        StepName::Switch => format!("undone: the database URL is {url} again"),
        StepName::StartController => format!("undone: the controller runs on {url}, not on k8s"),
        _ => return before.map(str::to_string),
    };
    Some(after)
}

/// Rewrites the messages of the steps `rest_of_steps` marks rolled back.
pub(super) fn after_rollback(
    steps: Vec<(StepName, StepState, Option<String>)>,
    url: Option<&str>,
) -> Vec<(StepName, StepState, Option<String>)> {
    steps
        .into_iter()
        .map(|(name, state, message)| match state {
            StepState::RolledBack => {
                let after = undone_message(name, message.as_deref(), url);
                (name, state, after)
            }
            _ => (name, state, message),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undone_steps_say_what_is_true_after_the_rollback() {
        let url = Some("etcd://piraeus-op-etcd:2379");
        let start = undone_message(StepName::StartController, Some("controller running"), url).unwrap();
        assert!(
            !start.contains("controller running") && start.contains("etcd://"),
            "{start}"
        );
        let export = undone_message(StepName::Export, Some("exported 1040 rows"), url);
        assert_eq!(export.as_deref(), Some("exported 1040 rows"));
    }
}
