//! Who is asking: a verified subject and role. How they proved it (a JWT over HTTP, the
//! operator's shell) is the outer layers' business; use cases only see this.

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A shopper: their own carts and orders.
    Customer,
    /// Staff: the catalogue, every order, the audit endpoints.
    Admin,
}

/// A verified caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Customer id (shoppers) or operator name (staff): recorded as the actor of their events.
    pub subject: String,
    /// What the caller may do.
    pub role: Role,
}

impl Caller {
    /// Whether the caller is staff.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the caller may see or change what belongs to `customer_id`: its owner, or staff.
    pub fn may_act_for(&self, customer_id: &str) -> bool {
        self.is_admin() || self.subject == customer_id
    }
}
