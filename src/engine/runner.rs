//! Drives one run through its steps.
use tokio_util::sync::CancellationToken;

use super::Inner;

pub(super) async fn drive(_inner: &Inner, _id: &str, _cancel: CancellationToken) {}
