//! Fixture data that seeds the emulator: companies, their credentials, content catalog,
//! learner activity and pre-existing users.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The demo data set, shipped with the crate so the demo and tests need no files on disk.
const DEMO_FIXTURES_JSON: &str = include_str!("../fixtures/demo.json");

/// Everything the emulator serves, one entry per company (learning site).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fixtures {
    pub companies: Vec<CompanyFixture>,
}

/// Region of a company. MindTickle hosts each company in exactly one region, and only that
/// region's API host serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    Global,
    Us,
}

/// One company (tenant) with its learning site, credentials and content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompanyFixture {
    pub company_id: String,
    /// Bare learning-site host, for example `acme.mindtickle.com`.
    pub ls_url: String,
    pub region: Region,
    pub key_pairs: Vec<KeyPair>,
    /// HTTP Basic credentials of the OData reporting feed, separate from the key pairs.
    pub reporting_user: String,
    pub reporting_password: String,
    #[serde(default)]
    pub series: Vec<SeriesFixture>,
    #[serde(default)]
    pub modules: Vec<ModuleFixture>,
    #[serde(default)]
    pub activity: Vec<ActivityFixture>,
    /// Users that exist before any upsert.
    #[serde(default)]
    pub users: Vec<UserFixture>,
    /// Groups that exist before any group is created over the API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupFixture>,
}

/// A group of users. MindTickle looks groups up only by exact name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupFixture {
    pub id: String,
    pub name: String,
}

/// An API key and its secret key, as issued in the MindTickle admin console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyPair {
    pub api_key: String,
    pub secret_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeriesFixture {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModuleFixture {
    pub id: String,
    pub series_id: String,
    pub name: String,
    /// `COURSE`, `UPDATE`, `ASSESSMENT` or another MindTickle module type.
    pub module_type: String,
    #[serde(default)]
    pub description: String,
    /// Tag names served by the just-in-time module details.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Published version of the module, served by the just-in-time module details.
    #[serde(default = "first_version")]
    pub version: u32,
}

fn first_version() -> u32 {
    1
}

/// A learner's state in one module; it feeds both the xAPI statements and the OData feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivityFixture {
    pub email: String,
    pub module_id: String,
    pub state: ActivityState,
    #[serde(default)]
    pub percent_completed: f64,
    #[serde(default)]
    pub score: Option<f64>,
    #[serde(default)]
    pub max_score: Option<f64>,
    #[serde(default)]
    pub invited_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub is_overdue: bool,
    #[serde(default)]
    pub has_failed: bool,
}

/// The xAPI verbs MindTickle reports for module progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityState {
    NotStarted,
    InProgress,
    Completed,
}

impl ActivityState {
    pub fn verb(self) -> &'static str {
        match self {
            ActivityState::NotStarted => "not_started",
            ActivityState::InProgress => "in_progress",
            ActivityState::Completed => "completed",
        }
    }
}

/// MindTickle's `userState`: `ADDED` is invited but never signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserState {
    #[default]
    Active,
    Added,
    Deactivated,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserFixture {
    pub id: String,
    pub email: String,
    pub name: String,
    #[serde(default)]
    pub user_state: UserState,
    #[serde(default)]
    pub group_ids: Vec<String>,
    #[serde(default)]
    pub profile: BTreeMap<String, String>,
}

/// Fixtures that parse but contradict themselves.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("fixture JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("fixtures are inconsistent: {0}")]
    Inconsistent(String),
}

impl Fixtures {
    /// Parses fixtures from JSON (camelCase keys) and checks that their references resolve.
    pub fn from_json(json: &str) -> Result<Fixtures, FixtureError> {
        let fixtures: Fixtures = serde_json::from_str(json)?;
        fixtures.validate()?;
        Ok(fixtures)
    }

    /// Checks uniqueness of company ids and learning sites, and that every module, activity
    /// row and user points at something that exists.
    pub fn validate(&self) -> Result<(), FixtureError> {
        let inconsistent = |message: String| Err(FixtureError::Inconsistent(message));
        let mut company_ids = HashSet::new();
        let mut ls_urls = HashSet::new();

        for company in &self.companies {
            if !company_ids.insert(company.company_id.as_str()) {
                return inconsistent(format!("company id {:?} appears twice", company.company_id));
            }
            if !ls_urls.insert(company.ls_url.to_ascii_lowercase()) {
                return inconsistent(format!("lsUrl {:?} appears twice", company.ls_url));
            }
            if company.key_pairs.is_empty() {
                return inconsistent(format!(
                    "company {:?} has no key pair, so no client could sign in; add one to keyPairs",
                    company.company_id
                ));
            }

            let series: HashSet<&str> = company.series.iter().map(|s| s.id.as_str()).collect();
            for module in &company.modules {
                if !series.contains(module.series_id.as_str()) {
                    return inconsistent(format!(
                        "module {} of company {:?} names series {}, which is not in its series list",
                        module.id, company.company_id, module.series_id
                    ));
                }
            }

            let modules: HashSet<&str> = company.modules.iter().map(|m| m.id.as_str()).collect();
            for row in &company.activity {
                if !modules.contains(row.module_id.as_str()) {
                    return inconsistent(format!(
                        "an activity row of company {:?} names module {}, which is not in its module list",
                        company.company_id, row.module_id
                    ));
                }
            }

            let mut group_ids = HashSet::new();
            let mut group_names = HashSet::new();
            for group in &company.groups {
                if !group_ids.insert(group.id.as_str()) || !group_names.insert(group.name.as_str())
                {
                    return inconsistent(format!(
                        "company {:?} lists group {:?} (id {}) twice; group ids and names must be unique",
                        company.company_id, group.name, group.id
                    ));
                }
            }

            let mut emails = HashSet::new();
            for user in &company.users {
                if !emails.insert(user.email.to_ascii_lowercase()) {
                    return inconsistent(format!(
                        "company {:?} lists a user email twice",
                        company.company_id
                    ));
                }
            }
        }
        Ok(())
    }

    /// Serializes the fixtures as pretty-printed JSON that [`Fixtures::from_json`] reads back.
    pub fn to_json(&self) -> String {
        // Plain structs, strings, numbers and maps with string keys always serialize.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn company(&self, company_id: &str) -> Option<&CompanyFixture> {
        self.companies.iter().find(|c| c.company_id == company_id)
    }
}

/// Returns the demo data set: companies `acme` (global region) and `globex` (US region).
pub fn demo_fixtures() -> Fixtures {
    // The file is part of the crate and a unit test parses it, so failure here is a build defect.
    #[allow(clippy::expect_used)]
    Fixtures::from_json(DEMO_FIXTURES_JSON).expect("fixtures/demo.json is valid")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn demo_fixtures_parse_and_validate() {
        let fixtures = Fixtures::from_json(DEMO_FIXTURES_JSON).unwrap();
        let ids: Vec<&str> = fixtures
            .companies
            .iter()
            .map(|c| c.company_id.as_str())
            .collect();
        assert_eq!(ids, ["acme", "globex"]);
        assert_eq!(fixtures.company("globex").unwrap().region, Region::Us);
    }

    #[test]
    fn activity_for_unknown_module_is_rejected() {
        let mut fixtures = demo_fixtures();
        fixtures.companies[0].activity[0].module_id = "0".into();
        let error = fixtures.validate().unwrap_err();
        assert!(error.to_string().contains("module 0"), "{error}");
    }
}
