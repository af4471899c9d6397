//! Shared state behind all listeners: companies, users, tokens, bulk processes, counters and
//! injected faults.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use axum::http::StatusCode;
use chrono::Utc;
use serde::Serialize;
use tokio::time::Instant;

use crate::{
    error::ApiError,
    faults::CompanySwitches,
    fixtures::{
        ActivityFixture, ActivityState, CompanyFixture, Fixtures, GroupFixture, Region, UserState,
    },
    rate_limit::{RateLimitProfile, RequestLog},
};

/// Behaviour switches of one emulator instance.
#[derive(Debug, Clone)]
pub struct Options {
    /// Lifetime of issued tokens; MindTickle issues tokens for 3600 s.
    pub token_ttl: Duration,
    /// Time from an upsert or deactivate request until its process reports `SUCCESS` and the
    /// change becomes visible.
    pub process_delay: Duration,
    pub rate_limit: RateLimitProfile,
    /// Serves the xAPI `stored` time as the event time in seconds read as milliseconds, so a
    /// 2026 event reads as January 1970, as one live integration reports.
    pub stored_quirk: bool,
    /// Status for an expired bearer token. Sources disagree between 401 and 403.
    pub expired_token_status: u16,
    /// Puts v4.0 `nextRecordsUrl` and xAPI `more` URLs on the global host for every tenant, as
    /// MindTickle does, so a US tenant that follows them unchanged gets 500. Tests can turn it
    /// off per company with [`crate::Fault::GlobalContinuation`].
    pub global_continuation: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            token_ttl: Duration::from_secs(3600),
            process_delay: Duration::from_millis(200),
            rate_limit: RateLimitProfile::Documented,
            stored_quirk: false,
            expired_token_status: 403,
            global_continuation: true,
        }
    }
}

/// The listener a request arrived on. Tokens only work on the listener that issued them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Host {
    Api(Region),
    Admin,
}

/// A user as the emulator stores it, for assertions in tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmulatedUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub user_state: UserState,
    pub group_ids: Vec<String>,
    pub profile: BTreeMap<String, String>,
}

pub(crate) struct Company {
    pub fixture: CompanyFixture,
    pub users: Vec<EmulatedUser>,
    pub requests: RequestLog,
    pub request_count: u64,
    pub rejected_count: u64,
    pub token_request_count: u64,
    pub groups: Vec<GroupFixture>,
    /// Users created by upserts, per lower-cased email.
    pub user_creations: BTreeMap<String, u64>,
    pub switches: CompanySwitches,
    /// Legacy JWTs whose `iat` (epoch seconds) is at or before this time read as expired.
    pub jwt_expired_through: Option<f64>,
    /// Legacy JWTs whose `iat` is at or before this time are rejected as invalid.
    pub jwt_revoked_through: Option<f64>,
}

impl Company {
    pub fn user_index(&self, email: &str) -> Option<usize> {
        self.users
            .iter()
            .position(|u| u.email.eq_ignore_ascii_case(email))
    }

    /// Adds a `not_started` activity row for every module of a series the learner does not
    /// have yet, so the assignment shows in xAPI and OData.
    fn assign_series(&mut self, series_id: &str, email: &str) -> Result<(), String> {
        let email = email.trim();
        let Some(index) = self.user_index(email) else {
            return Err(format!("User not found: {email}"));
        };
        let email = self.users[index].email.clone();
        let invited_at = Utc::now();
        let fixture = &mut self.fixture;
        let module_ids: Vec<String> = fixture
            .modules
            .iter()
            .filter(|m| m.series_id == series_id)
            .map(|m| m.id.clone())
            .collect();
        for module_id in module_ids {
            let assigned = fixture
                .activity
                .iter()
                .any(|row| row.module_id == module_id && row.email.eq_ignore_ascii_case(&email));
            if !assigned {
                fixture.activity.push(ActivityFixture {
                    email: email.clone(),
                    module_id,
                    state: ActivityState::NotStarted,
                    percent_completed: 0.0,
                    score: None,
                    max_score: None,
                    invited_at: Some(invited_at),
                    started_at: None,
                    completed_at: None,
                    is_overdue: false,
                    has_failed: false,
                });
            }
        }
        Ok(())
    }
}

pub(crate) struct Token {
    pub company_id: String,
    pub host: Host,
    pub issued_at: Instant,
    pub expires_at: Instant,
}

/// A user entry of an upsert request, validated when the process runs, as MindTickle does.
#[derive(Debug, Clone)]
pub(crate) struct UserWrite {
    pub email: String,
    pub name: String,
    pub group_ids: Option<Vec<String>>,
    pub profile: Option<BTreeMap<String, String>>,
    pub user_state: Option<UserState>,
}

#[derive(Debug, Clone)]
pub(crate) enum ProcessAction {
    Upsert(Vec<UserWrite>),
    Deactivate {
        emails: Vec<String>,
        ids: Vec<String>,
    },
    /// Assigns every module of a series to learners, keyed by email.
    Assign {
        series_id: String,
        emails: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum ProcessState {
    Queued,
    InProgress,
    Success,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProcessError {
    pub email: String,
    pub message: String,
}

pub(crate) struct Process {
    pub id: String,
    pub company_id: String,
    pub created_at: Instant,
    pub action: ProcessAction,
    pub outcome: Option<(ProcessState, Vec<ProcessError>)>,
}

pub(crate) struct State {
    pub companies: BTreeMap<String, Company>,
    pub tokens: HashMap<String, Token>,
    /// In creation order, so changes apply in the order they were requested.
    pub processes: Vec<Process>,
    pub faults: VecDeque<ApiError>,
    pub delays: VecDeque<Duration>,
    next_user_seq: u64,
    next_process_seq: u64,
    next_group_seq: u64,
}

/// Base URLs of the three listeners.
#[derive(Debug, Clone)]
pub(crate) struct Urls {
    pub api_global: String,
    pub api_us: String,
    pub admin: String,
}

impl Urls {
    pub fn of(&self, host: Host) -> &str {
        match host {
            Host::Api(Region::Global) => &self.api_global,
            Host::Api(Region::Us) => &self.api_us,
            Host::Admin => &self.admin,
        }
    }
}

pub(crate) struct Shared {
    pub options: Options,
    pub urls: Urls,
    state: Mutex<State>,
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub shared: Arc<Shared>,
    pub host: Host,
}

// Ids the emulator assigns start from these bases, so they are 19-digit numeric strings like
// MindTickle's and repeat from run to run.
const USER_ID_BASE: u64 = 1_590_000_000_000_000_000;
const PROCESS_ID_BASE: u64 = 1_720_000_000_000_000_000;
const GROUP_ID_BASE: u64 = 1_830_000_000_000_000_000;

impl Shared {
    pub fn new(fixtures: Fixtures, options: Options, urls: Urls) -> Shared {
        let companies = fixtures
            .companies
            .into_iter()
            .map(|fixture| {
                let users = fixture
                    .users
                    .iter()
                    .map(|u| EmulatedUser {
                        id: u.id.clone(),
                        email: u.email.clone(),
                        name: u.name.clone(),
                        user_state: u.user_state,
                        group_ids: u.group_ids.clone(),
                        profile: u.profile.clone(),
                    })
                    .collect();
                let company = Company {
                    users,
                    requests: RequestLog::default(),
                    request_count: 0,
                    rejected_count: 0,
                    token_request_count: 0,
                    groups: fixture.groups.clone(),
                    user_creations: BTreeMap::new(),
                    switches: CompanySwitches::new(options.global_continuation),
                    jwt_expired_through: None,
                    jwt_revoked_through: None,
                    fixture,
                };
                (company.fixture.company_id.clone(), company)
            })
            .collect();
        Shared {
            options,
            urls,
            state: Mutex::new(State {
                companies,
                tokens: HashMap::new(),
                processes: Vec::new(),
                faults: VecDeque::new(),
                delays: VecDeque::new(),
                next_user_seq: 1,
                next_process_seq: 1,
                next_group_seq: 1,
            }),
        }
    }

    /// Locks the state after applying every bulk process whose delay has passed.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every mutation is a single
        // step), so a poisoned lock is safe to keep using.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.settle(Instant::now(), self.options.process_delay);
        state
    }

    /// Counts a request against a company's budget, rejecting it with 429 over the limit.
    pub fn admit(&self, state: &mut State, company_id: &str) -> Result<(), ApiError> {
        let Some(company) = state.companies.get_mut(company_id) else {
            return Err(ApiError::unauthorized("Unauthorized"));
        };
        company.request_count += 1;
        match company
            .requests
            .admit(self.options.rate_limit, Instant::now())
        {
            Ok(()) => Ok(()),
            Err(wait) => {
                company.rejected_count += 1;
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Err(
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "API rate limit exceeded")
                        .with_retry_after(Some(seconds.max(1).to_string())),
                )
            }
        }
    }

    pub fn expired_token_status(&self) -> StatusCode {
        StatusCode::from_u16(self.options.expired_token_status).unwrap_or(StatusCode::FORBIDDEN)
    }
}

impl State {
    pub fn start_process(&mut self, company_id: &str, action: ProcessAction) -> String {
        let id = (PROCESS_ID_BASE + self.next_process_seq).to_string();
        self.next_process_seq += 1;
        self.processes.push(Process {
            id: id.clone(),
            company_id: company_id.to_owned(),
            created_at: Instant::now(),
            action,
            outcome: None,
        });
        id
    }

    /// Returns the group with this exact name, creating it first if the company has none.
    pub fn find_or_create_group(&mut self, company_id: &str, name: &str) -> Option<GroupFixture> {
        let State {
            companies,
            next_group_seq,
            ..
        } = self;
        let company = companies.get_mut(company_id)?;
        if let Some(group) = company.groups.iter().find(|g| g.name == name) {
            return Some(group.clone());
        }
        let group = GroupFixture {
            id: (GROUP_ID_BASE + *next_group_seq).to_string(),
            name: name.to_owned(),
        };
        *next_group_seq += 1;
        company.groups.push(group.clone());
        Some(group)
    }

    /// Reports a process as queued for the first half of the delay and in progress for the
    /// second half; finished processes report their outcome.
    pub fn process_state(&self, process: &Process, delay: Duration) -> ProcessState {
        match &process.outcome {
            Some((state, _)) => *state,
            None if process.created_at.elapsed() < delay / 2 => ProcessState::Queued,
            None => ProcessState::InProgress,
        }
    }

    fn settle(&mut self, now: Instant, delay: Duration) {
        for index in 0..self.processes.len() {
            let process = &self.processes[index];
            if process.outcome.is_some() || now.duration_since(process.created_at) < delay {
                continue;
            }
            let stalled = self
                .companies
                .get(&process.company_id)
                .is_some_and(|c| c.switches.stalled);
            if stalled {
                continue;
            }
            let company_id = process.company_id.clone();
            let action = process.action.clone();
            let outcome = self.apply(&company_id, &action);
            self.processes[index].outcome = Some(outcome);
        }
    }

    fn apply(
        &mut self,
        company_id: &str,
        action: &ProcessAction,
    ) -> (ProcessState, Vec<ProcessError>) {
        let mut errors = Vec::new();
        let mut applied = 0usize;
        let mut injected_failure = false;
        match action {
            ProcessAction::Upsert(writes) => {
                for write in writes {
                    let failing = self
                        .companies
                        .get(company_id)
                        .is_some_and(|c| c.switches.fails_email(&write.email));
                    if failing {
                        injected_failure = true;
                        errors.push(ProcessError {
                            email: write.email.clone(),
                            message: format!("Failed to save user {}", write.email.trim()),
                        });
                        continue;
                    }
                    match self.upsert_user(company_id, write) {
                        Ok(()) => applied += 1,
                        Err(message) => errors.push(ProcessError {
                            email: write.email.clone(),
                            message,
                        }),
                    }
                }
            }
            ProcessAction::Deactivate { emails, ids } => {
                let Some(company) = self.companies.get_mut(company_id) else {
                    return (ProcessState::Failed, errors);
                };
                for email in emails {
                    match company.user_index(email) {
                        Some(index) => {
                            company.users[index].user_state = UserState::Deactivated;
                            applied += 1;
                        }
                        None => errors.push(ProcessError {
                            email: email.clone(),
                            message: format!("User not found: {email}"),
                        }),
                    }
                }
                for id in ids {
                    match company.users.iter_mut().find(|u| &u.id == id) {
                        Some(user) => {
                            user.user_state = UserState::Deactivated;
                            applied += 1;
                        }
                        None => errors.push(ProcessError {
                            email: String::new(),
                            message: format!("User not found: id {id}"),
                        }),
                    }
                }
            }
            ProcessAction::Assign { series_id, emails } => {
                let Some(company) = self.companies.get_mut(company_id) else {
                    return (ProcessState::Failed, errors);
                };
                for email in emails {
                    match company.assign_series(series_id, email) {
                        Ok(()) => applied += 1,
                        Err(message) => errors.push(ProcessError {
                            email: email.clone(),
                            message,
                        }),
                    }
                }
            }
        }
        // NOTE: proposed behaviour. An injected email failure fails the whole process even when
        // other entries were applied, so a client cannot read SUCCESS and miss the error.
        let state = if injected_failure || (applied == 0 && !errors.is_empty()) {
            ProcessState::Failed
        } else {
            ProcessState::Success
        };
        (state, errors)
    }

    fn upsert_user(&mut self, company_id: &str, write: &UserWrite) -> Result<(), String> {
        let email = write.email.trim();
        if !is_plausible_email(email) {
            return Err(format!("Invalid email: {email:?}"));
        }
        if write.name.trim().is_empty() {
            return Err("Name must not be empty".to_owned());
        }
        let State {
            companies,
            next_user_seq,
            ..
        } = self;
        let Some(company) = companies.get_mut(company_id) else {
            return Err("Company not found".to_owned());
        };
        match company.user_index(email) {
            Some(index) => {
                let user = &mut company.users[index];
                user.name = write.name.clone();
                if let Some(group_ids) = &write.group_ids {
                    user.group_ids = group_ids.clone();
                }
                if let Some(profile) = &write.profile {
                    user.profile = profile.clone();
                }
                if let Some(user_state) = write.user_state {
                    user.user_state = user_state;
                }
            }
            None => {
                *company
                    .user_creations
                    .entry(email.to_ascii_lowercase())
                    .or_default() += 1;
                company.users.push(EmulatedUser {
                    id: {
                        *next_user_seq += 1;
                        (USER_ID_BASE + *next_user_seq - 1).to_string()
                    },
                    email: email.to_owned(),
                    name: write.name.clone(),
                    // NOTE: real MindTickle may create users as ADDED until they first sign in. The
                    // emulator makes them ACTIVE, so their assigned progress is visible at once.
                    user_state: write.user_state.unwrap_or(UserState::Active),
                    group_ids: write.group_ids.clone().unwrap_or_default(),
                    profile: write.profile.clone().unwrap_or_default(),
                });
            }
        }
        Ok(())
    }
}

fn is_plausible_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
        }
        None => false,
    }
}
