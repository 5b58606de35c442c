//! The data that the sandbox starts with: the referrals of the published examples, and N
//! synthetic ones made by a seeded generator (the same seed and N give the same data).

use chrono::{DateTime, Duration, TimeZone, Utc};
use referrals_model::facts::STATUS_RULES;
use referrals_model::types::{
    Address, AssistanceRequestCode, Consent, ContactPreference, Contract, ContractTerm,
    CustomerProfile, CustomerProfileId, CustomerProfileIdType, CustomerProfileIds, CustomerSize,
    DeploymentLocation, InviteContext, InvitedBy, Link, Member, PricingModel, Referral,
    ReferralDetails, ReferralDirection, ReferralLinks, ReferralQualification, ReferralStatus,
    ReferralSubstatus, ReferralType, Registration, RegistrationStatusHistory, RegistrationType,
    Requirements, SalesStage, SolutionDetail, SolutionTag, SolutionType, Tag, Target,
};
use referrals_model::{Amount, Operation, parameters};
use uuid::Uuid;

/// The organization that the sandbox's caller belongs to.
pub const ORGANIZATION_ID: &str = "7d23e5ca-19dc-4eaa-aac8-5e6b559f0d1d";
/// Its name.
pub const ORGANIZATION_NAME: &str = "Contoso Company";

/// The referrals of the published examples (seeds 001 and 003; the list examples hold the same
/// two referrals).
pub fn examples() -> Vec<Referral> {
    [
        include_str!("../../../openapi/examples/seed001-get-2020.json"),
        include_str!("../../../openapi/examples/seed003-get-2019.json"),
    ]
    .iter()
    .map(|text| {
        let mut referral: Referral = serde_json::from_str(text).expect("the seed examples decode");
        // A member of single-entity answers, not of the stored referral.
        referral.odata_context = None;
        referral
    })
    .collect()
}

const COMPANIES: [&str; 14] = [
    "Fabrikam",
    "Contoso",
    "Northwind Traders",
    "O'Neil & Sons",
    "Zoë's Bakery",
    "Müller GmbH",
    "東京商事",
    "Société Générale de Café",
    "D'Angelo Ltd",
    "Tailspin Toys",
    "Adatum",
    "Wide World Importers",
    "Proseware \"Labs\"",
    "Ålesund Fisk AS",
];
const FIRST_NAMES: [&str; 12] = [
    "Sue", "Joe", "Zoë", "José", "Åsa", "Siobhán", "Ravi", "Aiko", "Chloé", "李", "Renée", "Connor",
];
const LAST_NAMES: [&str; 12] = [
    "Smith",
    "O'Brien",
    "Hansen",
    "Müller",
    "García",
    "Nakamura",
    "Kumar",
    "D'Souza",
    "Ødegaard",
    "王",
    "Núñez",
    "Doe",
];
const PLACES: [(&str, &str, &str, &str); 20] = [
    ("US", "Redmond", "WA", "98052"),
    ("US", "New York", "NY", "10001"),
    ("CA", "Montréal", "QC", "H2X 1Y4"),
    ("GB", "London", "", "EC1A 1BB"),
    ("DE", "München", "BY", "80331"),
    ("FR", "Paris", "", "75001"),
    ("JP", "東京", "", "100-0001"),
    ("IN", "Bengaluru", "KA", "560001"),
    ("BR", "São Paulo", "SP", "01000-000"),
    ("AU", "Sydney", "NSW", "2000"),
    ("NL", "Amsterdam", "", "1012 JS"),
    ("SE", "Malmö", "", "211 19"),
    ("NO", "Ålesund", "", "6002"),
    ("ES", "A Coruña", "", "15001"),
    ("IT", "Milano", "MI", "20121"),
    ("MX", "Ciudad de México", "CDMX", "06000"),
    ("ZA", "Cape Town", "WC", "8001"),
    ("SG", "Singapore", "", "018989"),
    ("IE", "Dún Laoghaire", "", "A96"),
    ("PL", "Łódź", "", "90-001"),
];
const CURRENCIES: [&str; 6] = ["USD", "EUR", "GBP", "JPY", "INR", "AUD"];
const PRODUCTS: [&str; 9] = [
    "Azure",
    "Dynamics365Business",
    "Dynamics365Enterprise",
    "Microsoft365",
    "Office",
    "PowerBI",
    "SQL",
    "Teams",
    "Windows",
];
const SERVICES: [&str; 4] = [
    "ConsultingAndProfessional",
    "DeploymentOrMigration",
    "LearningAndCertification",
    "ManagedServices",
];
const INDUSTRIES: [&str; 6] = [
    "Education",
    "Manufacturing",
    "Healthcare",
    "Retail",
    "Government",
    "Financial",
];

/// Every (status, substatus) that the document's status rules allow.
fn stages() -> Vec<(ReferralStatus, ReferralSubstatus)> {
    STATUS_RULES
        .iter()
        .flat_map(|rule| {
            rule.substatus
                .iter()
                .map(|substatus| (rule.from.clone(), substatus.clone()))
        })
        .collect()
}

/// One synthetic referral in this many was last updated by a batch job, at one of
/// [`BATCHES`] instants: many referrals share an `updatedDateTime` (more than fit a page, from
/// a few hundred referrals on), as they do after an import, which an incremental sync must
/// handle.
const BATCH_SHARE: usize = 5;
/// How many instants the batch updates happened at.
const BATCHES: i64 = 8;
/// One synthetic referral in this many was created by the batch job too, at the instant of its
/// update: referrals that share both their creation and their update instant.
const IMPORT_SHARE: usize = 25;

/// The instant of the migration of [`crate::Config::migrated`], after every instant of the
/// synthetic data.
pub const MIGRATION: DateTime<Utc> = match DateTime::from_timestamp(1_772_323_200, 0) {
    Some(instant) => instant,
    None => DateTime::<Utc>::UNIX_EPOCH,
};

/// `count` synthetic referrals from `seed`, whose links point to `base`.
///
/// The first ones go through every value of every value set in turn (status, direction, type,
/// qualification, country, size), so that even a small N covers them all; after that the values
/// are drawn at random. Names hold quotes and non-ASCII letters; deal values have cents.
pub fn synthetic(count: usize, seed: u64, base: &str) -> Vec<Referral> {
    let mut draw = Draw {
        rng: fastrand::Rng::with_seed(seed),
        index: 0,
        engagements: Vec::new(),
        stages: stages(),
    };
    // The members that the drawing above leaves out come from the document's schemas, with
    // a generator of their own, so that the drawing's values stay as they were.
    let mut fill = fastrand::Rng::with_seed(seed ^ 0x6d65_6d62_6572_7321);
    (0..count)
        .map(|index| {
            draw.index = index;
            let basics = draw.basics();
            let referral = draw.referral(basics, base);
            let Ok(mut json) = serde_json::to_value(&referral) else {
                return referral;
            };
            crate::fill::fill(&mut json, &mut fill, 3);
            serde_json::from_value(json).unwrap_or(referral)
        })
        .collect()
}

/// What draws the synthetic referrals, one after the other.
struct Draw {
    rng: fastrand::Rng,
    /// The referral being drawn.
    index: usize,
    /// The engagements drawn so far; a referral joins one now and then.
    engagements: Vec<String>,
    /// The (status, substatus) pairs of the status rules.
    stages: Vec<(ReferralStatus, ReferralSubstatus)>,
}

/// The members of a synthetic referral that others depend on.
struct Basics {
    id: String,
    engagement_id: String,
    status: ReferralStatus,
    substatus: ReferralSubstatus,
    direction: ReferralDirection,
    kind: ReferralType,
    qualification: ReferralQualification,
    size: CustomerSize,
    place: (&'static str, &'static str, &'static str, &'static str),
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    company: String,
    currency: &'static str,
    deal_value: Amount,
}

impl Draw {
    /// An index below `length`: in turn for the first referrals, so that even a few cover every
    /// value, and at random after them.
    fn pick(&mut self, length: usize) -> usize {
        if self.index < 64 {
            self.index % length
        } else {
            self.rng.usize(..length)
        }
    }

    fn basics(&mut self) -> Basics {
        let id = uuid(&mut self.rng);
        let engagement_id = if !self.engagements.is_empty() && self.rng.u8(..10) == 0 {
            self.engagements[self.rng.usize(..self.engagements.len())].clone()
        } else {
            let engagement = uuid(&mut self.rng);
            self.engagements.push(engagement.clone());
            engagement
        };
        let stage = self.pick(self.stages.len());
        let (status, substatus) = self.stages[stage].clone();
        let direction =
            [ReferralDirection::Incoming, ReferralDirection::Outgoing][self.pick(2)].clone();
        let kind = [ReferralType::Independent, ReferralType::Shared][self.pick(2)].clone();
        let qualification =
            ReferralQualification::KNOWN[self.pick(ReferralQualification::KNOWN.len())].clone();
        let size = CustomerSize::KNOWN[self.pick(CustomerSize::KNOWN.len())].clone();
        let place = PLACES[self.pick(PLACES.len())];
        let (created, updated) = self.instants();
        let company = format!(
            "{} {}",
            COMPANIES[self.rng.usize(..COMPANIES.len())],
            self.index
        );
        let currency = CURRENCIES[self.rng.usize(..CURRENCIES.len())];
        let deal_value = self.deal_value();
        Basics {
            id,
            engagement_id,
            status,
            substatus,
            direction,
            kind,
            qualification,
            size,
            place,
            created,
            updated,
            company,
            currency,
            deal_value,
        }
    }

    /// When the referral was created and last updated; some share an instant of a batch job.
    fn instants(&mut self) -> (DateTime<Utc>, DateTime<Utc>) {
        let rng = &mut self.rng;
        // After every creation date of the data.
        let batches = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        let mut created = Utc.with_ymd_and_hms(2019, 1, 1, 0, 0, 0).unwrap()
            + Duration::seconds(rng.i64(0..7 * 365 * 24 * 3600))
            + Duration::nanoseconds(rng.i64(0..10_000_000) * 100);
        let updated = if self.index % BATCH_SHARE == BATCH_SHARE - 1 {
            let batch = batches + Duration::hours(rng.i64(0..BATCHES));
            if self.index % IMPORT_SHARE == IMPORT_SHARE - 1 {
                // Imported by the batch job: created and updated at its instant.
                created = batch;
            }
            batch
        } else {
            created
                + Duration::seconds(rng.i64(0..30 * 24 * 3600))
                + Duration::nanoseconds(rng.i64(0..10_000_000) * 100)
        };
        (created, updated)
    }

    /// A deal value with cents; now and then one that no f64 holds exactly.
    fn deal_value(&mut self) -> Amount {
        let rng = &mut self.rng;
        if rng.u8(..50) == 0 {
            format!(
                "{}{:02}.{:02}",
                rng.u64(1_000_000_000_000..10_000_000_000_000),
                rng.u8(..100),
                rng.u8(..100)
            )
        } else {
            format!("{}.{:02}", rng.u64(100..5_000_000), rng.u8(..100))
        }
        .parse()
        .expect("a decimal is an amount")
    }

    /// The referral of `basics`, with the rest of its members drawn.
    fn referral(&mut self, basics: Basics, base: &str) -> Referral {
        let Basics {
            id,
            engagement_id,
            status,
            substatus,
            created,
            updated,
            ..
        } = &basics;
        let incoming = basics.direction == ReferralDirection::Incoming;
        let shared = basics.kind == ReferralType::Shared;
        let accepted = matches!(status, ReferralStatus::Active)
            || matches!(substatus, ReferralSubstatus::Won | ReferralSubstatus::Lost);
        let rng = &mut self.rng;
        Referral {
            id: Some(id.clone()),
            engagement_id: Some(engagement_id.clone()),
            name: Some(format!(
                "{}: {}",
                basics.company,
                PRODUCTS[rng.usize(..PRODUCTS.len())]
            )),
            organization_id: Some(ORGANIZATION_ID.into()),
            organization_name: Some(ORGANIZATION_NAME.into()),
            external_reference_id: (rng.u8(..3) == 0).then(|| format!("CRM-{:06}", self.index)),
            created_date_time: Some(*created),
            updated_date_time: Some(*updated),
            expiration_date_time: (incoming && *status == ReferralStatus::New)
                .then(|| *created + Duration::days(14)),
            accepted_date_time: accepted.then(|| *created + Duration::hours(rng.i64(1..72))),
            closed_date_time: (*status == ReferralStatus::Closed).then_some(*updated),
            status: Some(status.clone()),
            substatus: Some(substatus.clone()),
            status_reason: (*substatus == ReferralSubstatus::Declined)
                .then(|| "Outside our service area.".into()),
            type_: Some(basics.kind.clone()),
            qualification: Some(basics.qualification.clone()),
            direction: Some(basics.direction.clone()),
            customer_profile: Some(customer(rng, &basics)),
            consent: Some(Consent {
                consent_to_contact: Some(true),
                consent_to_to_share_info_with_others: Some(rng.bool()),
                consent_to_share_referral_with_microsoft_sellers: shared.then_some(true),
                ..Consent::default()
            }),
            details: Some(details(rng, &basics, shared)),
            team: Some(vec![person(rng, "contoso.com")]),
            invite_context: incoming.then(|| invitation(rng, shared)),
            target: (!incoming && shared).then(|| vec![Target::microsoft()]),
            sales_stage: shared
                .then(|| SalesStage::KNOWN[rng.usize(..SalesStage::KNOWN.len())].clone()),
            registrations: (shared && *substatus == ReferralSubstatus::Won)
                .then(|| vec![registration(rng, *created, basics.currency)]),
            e_tag: Some(format!("\"{:016x}\"", rng.u64(..))),
            links: Some(links(base, id, engagement_id)),
            ..Referral::default()
        }
    }
}

/// The customer of a synthetic referral.
fn customer(rng: &mut fastrand::Rng, basics: &Basics) -> CustomerProfile {
    let (country, city, state, postal_code) = basics.place;
    CustomerProfile {
        name: Some(basics.company.clone()),
        address: Some(Address {
            address_line1: Some(format!("{} Main Street", rng.u16(1..999))),
            address_line2: Some(String::new()),
            city: Some(city.into()),
            state: (!state.is_empty()).then(|| state.into()),
            postal_code: Some(postal_code.into()),
            country: Some(country.into()),
            ..Address::default()
        }),
        size: Some(basics.size.clone()),
        team: Some(
            (0..rng.usize(1..3))
                .map(|_| person(rng, "customer.example"))
                .collect(),
        ),
        ids: Some(if rng.bool() {
            CustomerProfileIds::Array(vec![CustomerProfileId {
                profile_type: Some(CustomerProfileIdType::Duns),
                id: Some(format!("{:09}", rng.u32(..1_000_000_000))),
                ..CustomerProfileId::default()
            }])
        } else {
            CustomerProfileIds::Object(Default::default())
        }),
        ..CustomerProfile::default()
    }
}

/// The details of a synthetic referral.
fn details(rng: &mut fastrand::Rng, basics: &Basics, shared: bool) -> ReferralDetails {
    ReferralDetails {
        notes: Some(format!(
            "{} would like help with {}.",
            basics.company,
            SERVICES[rng.usize(..SERVICES.len())]
        )),
        deal_value: Some(basics.deal_value.clone()),
        currency: Some(basics.currency.into()),
        closing_date_time: Some(basics.created + Duration::days(rng.i64(30..365))),
        requirements: Some(Requirements {
            industries: Some(vec![tag(INDUSTRIES[rng.usize(..INDUSTRIES.len())])]),
            products: Some(vec![tag(PRODUCTS[rng.usize(..PRODUCTS.len())])]),
            services: Some(vec![tag(SERVICES[rng.usize(..SERVICES.len())])]),
            solutions: shared.then(|| {
                vec![SolutionTag {
                    id: Some(format!("SOL-{}", rng.u16(..1000))),
                    name: Some("Managed Azure landing zone".into()),
                    type_: Some(SolutionType::Category),
                    ..SolutionTag::default()
                }]
            }),
            ..Requirements::default()
        }),
        customer_requested_contact: Some(rng.bool()),
        ..ReferralDetails::default()
    }
}

/// The invitation of an incoming synthetic referral, from Microsoft.
fn invitation(rng: &mut fastrand::Rng, shared: bool) -> InviteContext {
    InviteContext {
        notes: Some("Can you help this customer? Thanks, John @ Microsoft".into()),
        invited_by: Some(InvitedBy::microsoft()),
        assistance_request_code: shared.then(|| {
            AssistanceRequestCode::KNOWN[rng.usize(..AssistanceRequestCode::KNOWN.len())].clone()
        }),
        ..InviteContext::default()
    }
}

fn uuid(rng: &mut fastrand::Rng) -> String {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn person(rng: &mut fastrand::Rng, domain: &str) -> Member {
    let first = FIRST_NAMES[rng.usize(..FIRST_NAMES.len())];
    let last = LAST_NAMES[rng.usize(..LAST_NAMES.len())];
    let local: String = format!("{first}.{last}")
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '\'' {
                c
            } else {
                'x'
            }
        })
        .collect();
    Member {
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        phone_number: Some(format!("+1 425 555 {:04}", rng.u16(..10000))),
        email: Some(format!("{local}@{domain}")),
        contact_preference: Some(ContactPreference {
            locale: Some(["en-US", "en-us", "fr-FR", "ja-JP", "de-DE"][rng.usize(..5)].into()),
            disable_notifications: Some(rng.bool()),
            ..ContactPreference::default()
        }),
        ..Member::default()
    }
}

fn tag(id: &str) -> Tag {
    Tag {
        id: Some(id.into()),
        ..Tag::default()
    }
}

fn registration(rng: &mut fastrand::Rng, created: DateTime<Utc>, currency: &str) -> Registration {
    let value: Amount = format!("{}.00", rng.u32(10_000..2_000_000))
        .parse()
        .expect("a decimal");
    Registration {
        id: Some(uuid(rng)),
        type_: Some(RegistrationType::AzureIpCoSell),
        registration_date_time: Some(created + Duration::days(20)),
        status: Some("Approved".into()),
        contract: Some(Contract {
            value: Some(value.clone()),
            currency: Some(currency.into()),
            start_date_time: Some(created + Duration::days(30)),
            end_date_time: Some(created + Duration::days(30 + 365 * 3)),
            sign_date_time: Some(created + Duration::days(25)),
            term: Some(ContractTerm::Finite),
            ..Contract::default()
        }),
        solution_details: Some(vec![SolutionDetail {
            id: Some(format!("SOL-{}", rng.u16(..1000))),
            name: Some("Managed Azure landing zone".into()),
            value: Some(value),
            currency: Some(currency.into()),
            is_deployed_on_azure: Some(true),
            primary_deployment_on: Some(DeploymentLocation::Customer),
            pricing_model: Some(PricingModel::PayAsYouGo),
            ..SolutionDetail::default()
        }]),
        status_history: Some(RegistrationStatusHistory {
            review_pending_date_time: Some(created + Duration::days(20)),
            approved_date_time: Some(created + Duration::days(24)),
            ..RegistrationStatusHistory::default()
        }),
        ..Registration::default()
    }
}

/// The `links` of a referral of the sandbox: its engagement's listing, and itself.
pub fn links(base: &str, id: &str, engagement_id: &str) -> ReferralLinks {
    let filter = referrals_model::query::engagement_id().eq(engagement_id);
    let list = Operation::ListReferrals;
    let get = Operation::GetReferral;
    ReferralLinks {
        related_referrals: Some(Link {
            uri: Some(format!(
                "{base}{}?{}={filter}",
                list.path(),
                parameters::list_referrals::FILTER
            )),
            method: Some(list.method().into()),
            ..Link::default()
        }),
        self_: Some(Link {
            uri: Some(format!("{base}{}", get.path().replace("{id}", id))),
            method: Some(get.method().into()),
            ..Link::default()
        }),
        ..ReferralLinks::default()
    }
}

/// A fresh eTag.
pub fn etag() -> String {
    format!("\"{}\"", Uuid::new_v4())
}
