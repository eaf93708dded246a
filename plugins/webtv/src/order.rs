//! The stored state of one WebTV order, keyed by gateway and order id.
//!
//! Only a paid order is final: a replayed request for it answers the stored SUCCESS
//! redirect again and moves no money. A failed attempt is not final (the buyer may top
//! up and press "Pay order" again), so the next request starts attempt n+1 with a new
//! payment reference; the attempt in progress keeps its reference, so re-driving it
//! after a crash or a concurrent duplicate cannot charge twice.

use crate::ids;
use crate::schedule::Period;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id_gateway: String,
    pub id_order: String,
    /// Normalised decimal text (`10.50`).
    pub amount: String,
    pub currency: String,
    pub order_number: String,
    pub id_user: String,
    /// Ledger account / payment-system customer.
    pub customer: String,
    /// Payment system of the current attempt.
    pub system: String,
    pub items: Vec<Item>,
    /// Current attempt, from 1.
    pub attempt: u32,
    pub state: OrderState,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OrderState {
    /// A direct charge of the current attempt is under way.
    Charging,
    /// A hosted checkout of the current attempt is being created.
    Starting { since: i64 },
    /// The buyer was sent to the payment system's page.
    Checkout { checkout_id: String, redirect_url: String },
    Paid {
        transaction: String,
        /// The attempt whose payment this is (another attempt's success is a double payment).
        attempt: u32,
        system: String,
        paid_at: i64,
        items: Vec<ItemOutcome>,
    },
    Failed { message: String },
}

/// A recurring item after its signature check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Item {
    Valid(ItemSpec),
    Invalid { index: usize, error: String },
}

impl Item {
    pub fn index(&self) -> usize {
        match self {
            Item::Valid(spec) => spec.index,
            Item::Invalid { index, .. } => *index,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemSpec {
    pub index: usize,
    pub sku: String,
    /// The signed value (`floatval` text), as a decimal.
    pub amount: String,
    pub period: Period,
    pub frequency: u32,
    pub first_payment_date: i64,
}

/// What the return URL reports for one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemOutcome {
    pub index: usize,
    pub error: Option<String>,
    pub profile_id: String,
    pub status: String,
    pub first_payment_date: i64,
}

impl Order {
    pub fn slug(&self) -> String {
        ids::order_slug(&self.id_gateway, &self.id_order)
    }

    pub fn key(&self) -> String {
        ids::order_key(&self.slug())
    }

    /// Payment reference of the current attempt.
    pub fn reference(&self) -> String {
        ids::order_reference(&self.slug(), self.attempt)
    }

    pub fn has_valid_items(&self) -> bool {
        self.items.iter().any(|i| matches!(i, Item::Valid(_)))
    }

    pub fn is_paid(&self) -> bool {
        matches!(self.state, OrderState::Paid { .. })
    }

    /// True while the current attempt has no outcome yet.
    pub fn in_progress(&self) -> bool {
        matches!(
            self.state,
            OrderState::Charging | OrderState::Starting { .. } | OrderState::Checkout { .. }
        )
    }
}
