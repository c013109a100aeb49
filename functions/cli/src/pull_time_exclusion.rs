//! The pure half of `ptc iam pull-time-exclusion`: how to make a principal (an operator's
//! role, a CI role that runs `ptc prewarm`) an ECR pull-time update exclusion, so that its
//! pulls do not move `lastRecordedPullTime`
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-time-update-exclusions.html>):
//! the AWS CLI command, the CloudFormation resource, and whether it is registered already.

use std::io::Write;

use ptc_core::pull_time::ExpectedExclusion;
use serde::Serialize;

/// The logical ID of the printed CloudFormation resource.
const LOGICAL_ID: &str = "OperatorPullTimeExclusion";

/// What `ptc iam pull-time-exclusion` prints (`--output json`: this object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExclusionAdvice {
    /// The principal to register.
    pub principal_arn: String,
    /// Where it comes from: `--principal-arn`, or `the caller (arn:...)`.
    pub source: String,
    /// False when the principal is a role known from its session ARN, which does not carry
    /// the role's path: `principal_arn` is then `role/NAME`, and a role with a path must be
    /// registered with its full ARN ([`Self::note`]).
    pub path_known: bool,
    /// Whether `ListPullTimeUpdateExclusions` lists it (a role known from its session: any
    /// role of that account and name); `null` when not asked (`--no-check`) or the call
    /// failed ([`Self::registered_unknown`]).
    pub registered: Option<bool>,
    /// Why `registered` is `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_unknown: Option<String>,
    /// The AWS CLI command that registers it.
    pub aws_cli: String,
    /// A CloudFormation resource (YAML) that registers it with a stack.
    pub cloudformation: String,
    /// What to check before running either, when the path is not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The advice for `expected`: the command (with `--region` when one is given), the
/// resource, and `registered` (`Ok(yes)`, or why it is not known).
pub fn advice(
    expected: &ExpectedExclusion,
    region: Option<&str>,
    registered: Result<bool, String>,
) -> ExclusionAdvice {
    let arn = expected.arn.as_str();
    let region = region.map(|r| format!(" --region {r}")).unwrap_or_default();
    let note = (!expected.path_known).then(|| {
        let name = expected.arn.name();
        format!(
            "{arn} is role {name} as its session ARN shows it, without the role's path: if the role has one, register the ARN `aws iam get-role --role-name {name} --query Role.Arn` prints instead"
        )
    });
    let (registered, registered_unknown) = match registered {
        Ok(yes) => (Some(yes), None),
        Err(why) => (None, Some(why)),
    };
    ExclusionAdvice {
        principal_arn: arn.to_owned(),
        source: expected.source.clone(),
        path_known: expected.path_known,
        registered,
        registered_unknown,
        aws_cli: format!(
            "aws ecr register-pull-time-update-exclusion{region} --principal-arn {arn}"
        ),
        cloudformation: format!(
            "{LOGICAL_ID}:\n  Type: AWS::ECR::PullTimeUpdateExclusion\n  Properties:\n    PrincipalArn: \"{arn}\"\n"
        ),
        note,
    }
}

/// The advice for people: the principal, whether it is registered, the command and the
/// resource.
pub fn print(out: &mut impl Write, advice: &ExclusionAdvice) -> std::io::Result<()> {
    writeln!(
        out,
        "principal: {} ({})",
        advice.principal_arn, advice.source
    )?;
    let registered = match (advice.registered, &advice.registered_unknown) {
        (Some(true), _) => "yes: its pulls do not move lastRecordedPullTime".to_owned(),
        (Some(false), _) => {
            "no: its pulls move lastRecordedPullTime, which prewarm's discovery and health-metrics' ImagesNotPulled read as use".to_owned()
        }
        (None, why) => format!("unknown ({})", why.as_deref().unwrap_or("not checked")),
    };
    writeln!(out, "registered: {registered}")?;
    if let Some(note) = &advice.note {
        writeln!(out, "note: {note}")?;
    }
    writeln!(out, "\nRegister it with the AWS CLI:\n  {}", advice.aws_cli)?;
    writeln!(out, "\nor with a CloudFormation stack (Resources:):")?;
    for line in advice.cloudformation.lines() {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ptc_core::pull_time::PrincipalArn;

    use super::*;

    #[test]
    fn an_exact_arn_gets_the_command_and_the_resource() {
        let expected = ExpectedExclusion::exact(
            PrincipalArn::parse("arn:aws:iam::123456789012:role/ci/ptc-prewarm").unwrap(),
            "--principal-arn",
        );
        let advice = advice(&expected, Some("eu-west-1"), Ok(false));
        assert_eq!(
            advice.aws_cli,
            "aws ecr register-pull-time-update-exclusion --region eu-west-1 --principal-arn arn:aws:iam::123456789012:role/ci/ptc-prewarm"
        );
        assert_eq!(
            advice.cloudformation,
            "OperatorPullTimeExclusion:\n  Type: AWS::ECR::PullTimeUpdateExclusion\n  Properties:\n    PrincipalArn: \"arn:aws:iam::123456789012:role/ci/ptc-prewarm\"\n"
        );
        assert_eq!((advice.registered, advice.note), (Some(false), None));
    }

    #[test]
    fn a_role_known_from_its_session_says_the_path_is_not_known() {
        let expected =
            ExpectedExclusion::from_caller("arn:aws:sts::123456789012:assumed-role/ops/alice")
                .unwrap();
        let advice = advice(&expected, None, Err("no credentials".into()));
        assert!(!advice.path_known);
        assert!(
            advice
                .aws_cli
                .ends_with("--principal-arn arn:aws:iam::123456789012:role/ops")
        );
        assert!(!advice.aws_cli.contains("--region"));
        assert!(
            advice
                .note
                .as_deref()
                .unwrap()
                .contains("aws iam get-role --role-name ops"),
            "{advice:?}"
        );
        let mut out = Vec::new();
        print(&mut out, &advice).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("registered: unknown (no credentials)"),
            "{text}"
        );
    }
}
