//! Access reviews and token reviews: what this service may do, what the controller's
//! ServiceAccount may do in the `k8s` backend, and who a bearer token belongs to.

use futures::future::join_all;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec, SubjectAccessReview,
    SubjectAccessReviewSpec, SubjectAccessReviewStatus,
};
use kube::api::{Api, PostParams};

use super::errors::map_kube_error;
use crate::cluster::{AccessDecision, AccessQuestion, ClusterResult, UserInfo};

fn attributes(question: &AccessQuestion) -> ResourceAttributes {
    ResourceAttributes {
        group: Some(question.group.clone()),
        resource: Some(question.resource.clone()),
        verb: Some(question.verb.clone()),
        namespace: (!question.namespace.is_empty()).then(|| question.namespace.clone()),
        ..ResourceAttributes::default()
    }
}

/// The decision with the most useful reason the authorizer gave.
fn decision(question: &AccessQuestion, status: Option<SubjectAccessReviewStatus>) -> AccessDecision {
    let status = status.unwrap_or_default();
    let reason = [status.reason, status.evaluation_error]
        .into_iter()
        .flatten()
        .filter(|r| !r.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let reason = match (reason.is_empty(), status.allowed) {
        (false, _) => reason,
        (true, true) => "allowed".into(),
        (true, false) => "no RBAC rule allows it".into(),
    };
    AccessDecision {
        question: question.clone(),
        allowed: status.allowed,
        reason,
    }
}

/// One SelfSubjectAccessReview per question, sent concurrently.
pub(super) async fn review_self_access(
    client: &kube::Client,
    questions: &[AccessQuestion],
) -> ClusterResult<Vec<AccessDecision>> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let reviews = questions.iter().map(|q| {
        let api = api.clone();
        async move {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(attributes(q)),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let answer = api
                .create(&PostParams::default(), &review)
                .await
                .map_err(|e| map_kube_error("create", "SelfSubjectAccessReview", "", "", e))?;
            Ok(decision(q, answer.status))
        }
    });
    join_all(reviews).await.into_iter().collect()
}

/// One SubjectAccessReview per question for `user` in `groups`, sent concurrently.
pub(super) async fn review_subject_access(
    client: &kube::Client,
    user: &str,
    groups: &[String],
    questions: &[AccessQuestion],
) -> ClusterResult<Vec<AccessDecision>> {
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let reviews = questions.iter().map(|q| {
        let api = api.clone();
        async move {
            let review = SubjectAccessReview {
                spec: SubjectAccessReviewSpec {
                    user: Some(user.to_string()),
                    groups: (!groups.is_empty()).then(|| groups.to_vec()),
                    resource_attributes: Some(attributes(q)),
                    ..SubjectAccessReviewSpec::default()
                },
                ..SubjectAccessReview::default()
            };
            let answer = api
                .create(&PostParams::default(), &review)
                .await
                .map_err(|e| map_kube_error("create", "SubjectAccessReview", "", "", e))?;
            Ok(decision(q, answer.status))
        }
    });
    join_all(reviews).await.into_iter().collect()
}

/// Who `token` belongs to; `None` when the API server does not accept it.
pub(super) async fn review_token(client: &kube::Client, token: &str) -> ClusterResult<Option<UserInfo>> {
    let api: Api<TokenReview> = Api::all(client.clone());
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_string()),
            ..TokenReviewSpec::default()
        },
        ..TokenReview::default()
    };
    // The token is in the request body only: neither it nor the review is logged.
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| map_kube_error("create", "TokenReview", "", "", e))?;
    Ok(user_of(answer))
}

fn user_of(review: TokenReview) -> Option<UserInfo> {
    let status = review.status?;
    if status.authenticated != Some(true) {
        return None;
    }
    let user = status.user?;
    let username = user.username.filter(|u| !u.is_empty())?;
    Some(UserInfo {
        username,
        groups: user.groups.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::authentication::v1::{TokenReviewStatus, UserInfo as K8sUserInfo};

    use super::*;

    #[test]
    fn cluster_wide_questions_have_no_namespace() {
        let attrs = attributes(&AccessQuestion::new(
            "internal.linstor.linbit.com",
            "*",
            "deletecollection",
            "",
        ));
        assert_eq!(attrs.namespace, None);
        assert_eq!(attrs.verb.as_deref(), Some("deletecollection"));
        let attrs = attributes(&AccessQuestion::new("", "pods", "create", "piraeus"));
        assert_eq!(attrs.namespace.as_deref(), Some("piraeus"));
    }

    #[test]
    fn decisions_carry_a_reason() {
        let q = AccessQuestion::new("", "pods", "create", "ns");
        let denied = decision(
            &q,
            Some(SubjectAccessReviewStatus {
                allowed: false,
                ..Default::default()
            }),
        );
        assert_eq!(
            (denied.allowed, denied.reason.as_str()),
            (false, "no RBAC rule allows it")
        );
        let allowed = decision(
            &q,
            Some(SubjectAccessReviewStatus {
                allowed: true,
                reason: Some(r#"RBAC: allowed by ClusterRoleBinding "x""#.into()),
                ..Default::default()
            }),
        );
        assert!(allowed.allowed && allowed.reason.contains("ClusterRoleBinding"));
        assert!(!decision(&q, None).allowed);
    }

    #[test]
    fn only_authenticated_tokens_have_a_user() {
        let review = |authenticated: bool| TokenReview {
            status: Some(TokenReviewStatus {
                authenticated: Some(authenticated),
                user: Some(K8sUserInfo {
                    username: Some("system:serviceaccount:ns:sa".into()),
                    groups: Some(vec!["system:serviceaccounts".into()]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let user = user_of(review(true)).expect("authenticated");
        assert_eq!(user.username, "system:serviceaccount:ns:sa");
        assert_eq!(user.groups, vec!["system:serviceaccounts"]);
        assert_eq!(user_of(review(false)), None);
        assert_eq!(user_of(TokenReview::default()), None);
    }
}
