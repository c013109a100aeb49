//! ECR's repository-name rule, checked against an implementation we did not write: moto's
//! `CreateRepository` validates `repositoryName` with the pattern of the API reference
//! (getmoto/moto#6479). Each name our check accepts, moto creates; each it refuses, moto
//! refuses too.

use ptc_core::rules::ecr_repository_name_problem;
use ptc_tests::{Stack, unique};

#[tokio::test(flavor = "multi_thread")]
async fn the_name_check_agrees_with_create_repository() {
    let stack = Stack::shared();
    let ecr = aws_sdk_ecr::Client::new(&stack.sdk_config().await);
    let id = unique().to_ascii_lowercase().replace(['_', '-', '.'], "");
    let names = [
        // Accepted by both (one separator between letters and digits).
        "names/a-b".to_owned(),
        "names/c_d.e/f".to_owned(),
        // Valid OCI names that ECR refuses: `__`, runs of `-`, separators side by side.
        "names/eclipse/che--centos--mysql-57-centos7".to_owned(),
        "names/a__b/c".to_owned(),
        "names/a.-b".to_owned(),
        "names/-a".to_owned(),
        "names/a_".to_owned(),
        "names//a".to_owned(),
    ];
    let mut checked = 0;
    for name in names {
        let name = name.replacen("names", &format!("names{id}"), 1);
        let ours = ecr_repository_name_problem(&name);
        let theirs = ecr.create_repository().repository_name(&name).send().await;
        assert_eq!(
            ours.is_none(),
            theirs.is_ok(),
            "{name}: our check says {ours:?}, CreateRepository says {theirs:?}"
        );
        checked += 1;
    }
    assert_eq!(checked, 8);
}
