//! The deterministic fixture generator.

use std::collections::HashSet;

use mindtickle_emulator::{
    ActivityState, Fixtures, GeneratorSpec, Region, RegionMix, UNSUPPORTED_MODULE_TYPE,
    generate_fixtures,
};
use reqwest::StatusCode;

use crate::{fast_processes, spawn_with};

fn is_nineteen_digits(id: &str) -> bool {
    id.len() == 19 && id.bytes().all(|b| b.is_ascii_digit())
}

#[test]
fn generator_same_seed_same_json() {
    let spec = GeneratorSpec::new(42, 3, 20);

    let first = generate_fixtures(&spec).to_json();
    let second = generate_fixtures(&spec).to_json();
    let other_seed = generate_fixtures(&GeneratorSpec::new(43, 3, 20)).to_json();

    assert_eq!(first, second);
    assert_ne!(first, other_seed);
    assert_eq!(Fixtures::from_json(&first).unwrap().to_json(), first);
}

#[test]
fn generator_shape_follows_spec() {
    let spec = GeneratorSpec {
        existing_users_per_company: 3,
        groups_per_company: 2,
        ..GeneratorSpec::new(7, 3, 5)
    };

    let fixtures = generate_fixtures(&spec);

    fixtures.validate().unwrap();
    assert_eq!(fixtures.companies.len(), 3);
    let regions: Vec<Region> = fixtures.companies.iter().map(|c| c.region).collect();
    assert_eq!(regions, [Region::Global, Region::Us, Region::Global]);

    let mut ids = HashSet::new();
    for (index, company) in fixtures.companies.iter().enumerate() {
        let number = index + 1;
        assert!(is_nineteen_digits(&company.company_id));
        assert_eq!(company.ls_url, format!("company{number}.mindtickle.com"));
        assert_eq!(company.key_pairs[0].api_key.len(), 40);
        assert_eq!(company.series.len(), 3);
        // Three series of four modules, plus the checklist in the last series.
        assert_eq!(company.modules.len(), 13);
        assert_eq!(company.groups.len(), 2);

        let checklists: Vec<_> = company
            .modules
            .iter()
            .filter(|m| m.module_type == UNSUPPORTED_MODULE_TYPE)
            .collect();
        assert_eq!(checklists.len(), 1);
        assert_eq!(checklists[0].series_id, company.series[2].id);
        let assessments = company
            .modules
            .iter()
            .filter(|m| m.module_type == "ASSESSMENT")
            .count();
        assert_eq!(assessments, 3);

        let emails: Vec<&str> = company.users.iter().map(|u| u.email.as_str()).collect();
        let expected: Vec<String> = (1..=3)
            .map(|user| format!("user{user}@company{number}.example"))
            .collect();
        assert_eq!(emails, expected);
        assert_eq!(company.activity.len(), 5 * 13);
        assert!(
            company
                .activity
                .iter()
                .any(|a| a.email == format!("user5@company{number}.example"))
        );

        for id in company
            .series
            .iter()
            .map(|s| &s.id)
            .chain(company.modules.iter().map(|m| &m.id))
            .chain(company.users.iter().map(|u| &u.id))
            .chain(company.groups.iter().map(|g| &g.id))
            .chain([&company.company_id])
        {
            assert!(is_nineteen_digits(id), "{id}");
            assert!(ids.insert(id.clone()), "id {id} repeats");
        }
    }
}

#[test]
fn generator_scores_only_completed_assessments() {
    let fixtures = generate_fixtures(&GeneratorSpec::new(3, 2, 30));
    let mut scored = 0;

    for company in &fixtures.companies {
        for row in &company.activity {
            let module = company
                .modules
                .iter()
                .find(|m| m.id == row.module_id)
                .unwrap();
            let gradable =
                module.module_type == "ASSESSMENT" && row.state == ActivityState::Completed;
            assert_eq!(row.score.is_some(), gradable, "{row:?}");
            if let Some(score) = row.score {
                scored += 1;
                assert!((40.0..=100.0).contains(&score));
                assert_eq!(row.max_score, Some(100.0));
                assert_eq!(row.has_failed, score < 70.0);
            }
        }
    }
    assert!(scored > 0, "no completed assessment in 180 rows");
}

#[test]
fn generator_region_mix_all_us() {
    let spec = GeneratorSpec {
        region_mix: RegionMix::AllUs,
        ..GeneratorSpec::new(1, 2, 1)
    };

    let fixtures = generate_fixtures(&spec);

    assert!(fixtures.companies.iter().all(|c| c.region == Region::Us));
}

#[tokio::test]
async fn generated_fixtures_serve_over_http() {
    let fixtures = generate_fixtures(&GeneratorSpec::new(5, 2, 3));
    let us_company = fixtures.companies[1].clone();
    let app = spawn_with(fixtures, fast_processes()).await;
    let token = app.token_for(&us_company).await;

    let (status, series) = app
        .get(app.api(Region::Us, "/api/v2/series/list"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(series["totalHits"], 3);

    let (status, users) = app
        .post(
            app.api(Region::Us, "/services/data/v2.0/mtobjects/Users"),
            Some(&token),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users["totalSize"], 3);
    assert_eq!(users["users"][0]["email"], "user1@company2.example");
}
