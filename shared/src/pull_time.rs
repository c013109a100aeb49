//! ECR pull-time update exclusions: the IAM principals whose pulls do not move an image's
//! `lastRecordedPullTime`
//! (<https://docs.aws.amazon.com/AmazonECR/latest/userguide/pull-time-update-exclusions.html>).
//!
//! prewarm pulls every watch-list image through the cache, and health-metrics reads index
//! manifests with `BatchGetImage`: both are pulls, so without an exclusion for their roles
//! prewarm's discovery (tags pulled within `PTC_DISCOVERY_DAYS`) feeds itself and
//! health-metrics' `ImagesNotPulled` counts the product's own reads as use.
//!
//! [`PrincipalArn`] is an ARN ECR accepts in its list (the pattern of
//! `AWS::ECR::PullTimeUpdateExclusion`'s `PrincipalArn`); [`ExpectedExclusion`] is one
//! principal that should be in it, found in `ListPullTimeUpdateExclusions`' answer by
//! [`ExpectedExclusion::is_registered`].

use std::fmt;

use serde::Serialize;

/// An IAM role or user ARN as ECR's exclusion list takes it:
/// `^arn:aws(-[a-z]+)*:iam::[0-9]{12}:(role|user)/[\w+=,.@-]+(/[\w+=,.@-]+)*$`, at most 200
/// characters (the CloudFormation schema of `AWS::ECR::PullTimeUpdateExclusion`). The last
/// segment is the name, the ones before it the path (`role/service-role/ptc` has the path
/// `/service-role/`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PrincipalArn {
    text: String,
}

/// The principal types ECR's pattern accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalType {
    /// `role/...`
    Role,
    /// `user/...`
    User,
}

/// At most this many characters (`PrincipalArn`'s `maxLength`).
const MAX_LEN: usize = 200;

impl PrincipalArn {
    /// The ARN, checked against ECR's pattern. The error says what is wrong, e.g.
    /// `not an IAM role or user ARN (arn:aws:iam::<12 digits>:role/NAME or user/NAME)`.
    pub fn parse(value: &str) -> Result<Self, String> {
        const SHAPE: &str = "arn:aws:iam::<12 digits>:role/[PATH/]NAME or user/[PATH/]NAME";
        if value.len() > MAX_LEN {
            return Err(format!("longer than {MAX_LEN} characters"));
        }
        let parts: Vec<&str> = value.splitn(6, ':').collect();
        let [arn, partition, service, region, account, resource] = parts[..] else {
            return Err(format!("not an IAM role or user ARN ({SHAPE})"));
        };
        if arn != "arn" || service != "iam" || !region.is_empty() {
            return Err(format!("not an IAM role or user ARN ({SHAPE})"));
        }
        let mut words = partition.split('-');
        if words.next() != Some("aws")
            || !words.all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        {
            return Err(format!("partition {partition:?} is not aws or aws-<name>"));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("account {account:?} is not 12 digits"));
        }
        let Some((kind, path_and_name)) = resource.split_once('/') else {
            return Err(format!(
                "{resource:?} is not role/... or user/... (an account root, an assumed-role session or a group cannot be excluded)"
            ));
        };
        if kind != "role" && kind != "user" {
            return Err(format!(
                "{kind:?} is not role or user (only IAM roles and users can be excluded)"
            ));
        }
        let word = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
        };
        if !path_and_name.split('/').all(word) {
            return Err(format!(
                "{path_and_name:?}: each segment of the path and name is letters, digits and _+=,.@- (no empty segment, no trailing /)"
            ));
        }
        Ok(Self {
            text: value.to_owned(),
        })
    }

    /// The ARN as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn parts(&self) -> (&str, &str, &str) {
        // Checked by parse: arn:<partition>:iam::<account>:<kind>/<path and name>.
        let mut it = self.text.splitn(6, ':');
        let partition = it.nth(1).unwrap_or_default();
        let account = it.nth(2).unwrap_or_default();
        let resource = it.next().unwrap_or_default();
        (partition, account, resource)
    }

    /// The partition, e.g. `aws`, `aws-cn`.
    pub fn partition(&self) -> &str {
        self.parts().0
    }

    /// The 12-digit account.
    pub fn account(&self) -> &str {
        self.parts().1
    }

    /// Role or user.
    pub fn principal_type(&self) -> PrincipalType {
        if self.parts().2.starts_with("role/") {
            PrincipalType::Role
        } else {
            PrincipalType::User
        }
    }

    /// The role's or user's name: the last segment.
    pub fn name(&self) -> &str {
        self.parts().2.rsplit('/').next().unwrap_or_default()
    }
}

impl fmt::Display for PrincipalArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for PrincipalArn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A principal that should be on the exclusion list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedExclusion {
    /// Its ARN: exact (from the settings, a flag, an IAM user's caller ARN), or for a role
    /// session the role's ARN without its path (see [`Self::path_known`]).
    pub arn: PrincipalArn,
    /// Whether [`Self::arn`] carries the principal's real path. False for a role known only
    /// from a session ARN (`arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`), which names the
    /// role but not its path: `role/NAME` may really be `role/service-role/NAME`.
    pub path_known: bool,
    /// Where the expectation comes from, for reports: `PTC_PULL_TIME_EXCLUDED_ROLES`, `the
    /// caller (arn:aws:sts::...)`, `--principal-arn`.
    pub source: String,
}

impl ExpectedExclusion {
    /// An exact ARN.
    pub fn exact(arn: PrincipalArn, source: impl Into<String>) -> Self {
        Self {
            arn,
            path_known: true,
            source: source.into(),
        }
    }

    /// The principal a caller ARN (STS `GetCallerIdentity`'s `Arn`) stands for: an IAM user
    /// or role ARN as it is; a role session (`arn:P:sts::ACCOUNT:assumed-role/NAME/SESSION`)
    /// as its role `arn:P:iam::ACCOUNT:role/NAME`, path unknown. `None` for what cannot be
    /// excluded: an account root, a federated user, anything else.
    pub fn from_caller(caller_arn: &str) -> Option<Self> {
        let source = format!("the caller ({caller_arn})");
        if let Ok(arn) = PrincipalArn::parse(caller_arn) {
            return Some(Self::exact(arn, source));
        }
        let mut parts = caller_arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("sts"), Some(""), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let role = resource.strip_prefix("assumed-role/")?.split('/').next()?;
        let arn =
            PrincipalArn::parse(&format!("arn:{partition}:iam::{account}:role/{role}")).ok()?;
        Some(Self {
            arn,
            path_known: false,
            source,
        })
    }

    /// Whether `ListPullTimeUpdateExclusions`' answer holds this principal: `Ok(true)` when it
    /// holds its ARN (path known), `Ok(false)` when it holds no role ARN of the same
    /// partition, account and name. For a role known only from its session (path unknown),
    /// an exclusion of the same name is `Err` with why it cannot be told: IAM role names are
    /// unique in an account whatever their path
    /// (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html>), but an
    /// exclusion written with another path names no role at all, and a session does not say
    /// which path is the role's.
    pub fn registration<S: AsRef<str>>(&self, exclusions: &[S]) -> Result<bool, String> {
        if self.path_known {
            return Ok(exclusions.iter().any(|e| e.as_ref() == self.arn.as_str()));
        }
        let same_name: Vec<&str> = exclusions
            .iter()
            .map(AsRef::as_ref)
            .filter(|e| {
                PrincipalArn::parse(e).is_ok_and(|e| {
                    e.principal_type() == PrincipalType::Role
                        && e.partition() == self.arn.partition()
                        && e.account() == self.arn.account()
                        && e.name() == self.arn.name()
                })
            })
            .collect();
        if same_name.is_empty() {
            return Ok(false);
        }
        Err(format!(
            "an exclusion names role {} as {}, and a role session does not say the role's path: it is this role if `aws iam get-role --role-name {}` prints that ARN",
            self.arn.name(),
            same_name.join(", "),
            self.arn.name()
        ))
    }

    /// [`Self::registration`] is `Ok(true)`.
    pub fn is_registered<S: AsRef<str>>(&self, exclusions: &[S]) -> bool {
        self.registration(exclusions) == Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_and_user_arns_with_or_without_a_path_are_accepted() {
        for ok in [
            "arn:aws:iam::123456789012:role/ptc-PrewarmFunctionRole-1A2B3C",
            "arn:aws:iam::123456789012:role/service-role/team/ptc",
            "arn:aws-cn:iam::123456789012:user/ops@example.com",
            "arn:aws-us-gov:iam::123456789012:role/a+b=c,d.e_f-g",
        ] {
            let arn = PrincipalArn::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(arn.as_str(), ok);
        }
        let arn = PrincipalArn::parse("arn:aws:iam::123456789012:role/service-role/ptc").unwrap();
        assert_eq!(
            (
                arn.partition(),
                arn.account(),
                arn.principal_type(),
                arn.name()
            ),
            ("aws", "123456789012", PrincipalType::Role, "ptc")
        );
    }

    #[test]
    fn what_the_pattern_refuses_is_an_error_saying_why() {
        for (bad, why) in [
            ("ptc-role", "not an IAM role or user ARN"),
            ("arn:aws:iam::123456789012:root", "account root"),
            (
                "arn:aws:sts::123456789012:assumed-role/ptc/s",
                "not an IAM role",
            ),
            ("arn:aws:iam::12345678901:role/ptc", "12 digits"),
            ("arn:aws:iam::123456789012:group/ops", "role or user"),
            ("arn:aws:iam::123456789012:role/", "no empty segment"),
            ("arn:aws:iam::123456789012:role/a//b", "no empty segment"),
            ("arn:aws:iam::123456789012:role/a b", "letters, digits"),
            ("arn:AWS:iam::123456789012:role/a", "partition"),
            ("arn:aws-:iam::123456789012:role/a", "partition"),
            ("arn:aws:iam:us-east-1:123456789012:role/a", "not an IAM"),
        ] {
            let err = PrincipalArn::parse(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
        let long = format!("arn:aws:iam::123456789012:role/{}", "a".repeat(180));
        assert!(PrincipalArn::parse(&long).unwrap_err().contains("200"));
    }

    #[test]
    fn a_role_session_stands_for_its_role_and_a_name_match_cannot_be_told() {
        let expected =
            ExpectedExclusion::from_caller("arn:aws:sts::123456789012:assumed-role/ops/alice")
                .unwrap();
        assert_eq!(expected.arn.as_str(), "arn:aws:iam::123456789012:role/ops");
        assert!(!expected.path_known);
        // Review of issue 18: role `ops` with no path, an exclusion written as `role/team/ops`
        // names no role, and ECR went on recording the role's pulls; a name match is never
        // a "yes" when the path is not known.
        for registered in [
            "arn:aws:iam::123456789012:role/team/ops",
            "arn:aws:iam::123456789012:role/ops",
        ] {
            let why = expected.registration(&[registered]).unwrap_err();
            assert!(
                why.contains(registered) && why.contains("aws iam get-role --role-name ops"),
                "{why}"
            );
            assert!(!expected.is_registered(&[registered]));
        }
        for other in [
            "arn:aws:iam::123456789012:role/ops-admin",
            "arn:aws:iam::210987654321:role/ops",
            "arn:aws:iam::123456789012:user/ops",
            "arn:aws-cn:iam::123456789012:role/ops",
        ] {
            assert!(!expected.is_registered(&[other]), "{other}");
        }
    }

    #[test]
    fn an_exact_arn_must_be_registered_as_it_is() {
        let arn = PrincipalArn::parse("arn:aws:iam::123456789012:role/svc/prewarm").unwrap();
        let expected = ExpectedExclusion::exact(arn, "PTC_PULL_TIME_EXCLUDED_ROLES");
        assert!(expected.is_registered(&["arn:aws:iam::123456789012:role/svc/prewarm"]));
        assert!(!expected.is_registered(&["arn:aws:iam::123456789012:role/prewarm"]));
        assert!(!expected.is_registered::<&str>(&[]));
    }

    #[test]
    fn callers_that_cannot_be_excluded_have_no_expectation() {
        assert!(ExpectedExclusion::from_caller("arn:aws:iam::123456789012:root").is_none());
        assert!(
            ExpectedExclusion::from_caller("arn:aws:sts::123456789012:federated-user/bob")
                .is_none()
        );
        let user = ExpectedExclusion::from_caller("arn:aws:iam::123456789012:user/ops/bob")
            .expect("an IAM user can be excluded");
        assert!(user.path_known);
    }
}
