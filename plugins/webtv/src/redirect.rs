//! The URL that sends the buyer back to WebTV, built as the vendor's PHP builds it:
//! `{base}/index.php?go=store&do=payOrder&iq=..&tp=gid_..-step_2[-rp_1]&status=..&
//! status_msg=..&transaction=..&signature=..` then, per recurring item, `rp_n_error`
//! (failed items only), `rp_n_profile_id`, `rp_n_status`, `rp_n_first_payment_date`,
//! `rp_n_signature`; values go through PHP's `urlencode`.

use payhost_sdk::php::urlencode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "SUCCESS",
            Status::Error => "ERROR",
        }
    }
}

/// One recurring item's result, with our signature of `md5(profile_id . status)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemReturn {
    pub index: usize,
    pub error: Option<String>,
    pub profile_id: String,
    pub status: String,
    pub first_payment_date: i64,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnUrl {
    pub base_url: String,
    pub id_gateway: String,
    pub id_order: String,
    pub status: Status,
    /// Empty on success.
    pub status_msg: String,
    pub transaction: String,
    /// Our signature of the return message (see `signature::return_message`).
    pub signature: String,
    /// Present whenever the request carried `rp_num > 0`.
    pub items: Vec<ItemReturn>,
}

pub fn build(r: &ReturnUrl) -> String {
    let rp_flag = if r.items.is_empty() { "" } else { "-rp_1" };
    let mut url = format!(
        "{}/index.php?go=store&do=payOrder&iq={}&tp=gid_{}-step_2{}&status={}&status_msg={}&transaction={}&signature={}",
        r.base_url.trim_end_matches('/'),
        urlencode(&r.id_order),
        urlencode(&r.id_gateway),
        rp_flag,
        r.status.as_str(),
        urlencode(&r.status_msg),
        urlencode(&r.transaction),
        urlencode(&r.signature),
    );
    for item in &r.items {
        let n = item.index;
        if let Some(error) = &item.error {
            url.push_str(&format!("&rp_{n}_error={}", urlencode(error)));
        }
        url.push_str(&format!(
            "&rp_{n}_profile_id={}&rp_{n}_status={}&rp_{n}_first_payment_date={}&rp_{n}_signature={}",
            urlencode(&item.profile_id),
            urlencode(&item.status),
            item.first_payment_date,
            urlencode(&item.signature),
        ));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ReturnUrl {
        ReturnUrl {
            base_url: "https://www.mywebtvdomain.com/".into(),
            id_gateway: "3".into(),
            id_order: "99".into(),
            status: Status::Success,
            status_msg: String::new(),
            transaction: "98dfgdf89g7dg97df".into(),
            signature: "MGI5YzY0ZmE2N2Y4NW3ZDFmN2M0Zjc=".into(),
            items: vec![],
        }
    }

    #[test]
    fn matches_the_documented_example() {
        assert_eq!(
            build(&base()),
            "https://www.mywebtvdomain.com/index.php?go=store&do=payOrder&iq=99&tp=gid_3-step_2&status=SUCCESS&status_msg=&transaction=98dfgdf89g7dg97df&signature=MGI5YzY0ZmE2N2Y4NW3ZDFmN2M0Zjc%3D"
        );
    }

    #[test]
    fn errors_and_items_are_encoded() {
        let mut r = base();
        r.status = Status::Error;
        r.status_msg = "Not enough money: 5.00 < 10.50".into();
        r.transaction = String::new();
        r.signature = "a+b/c=".into();
        r.items = vec![
            ItemReturn {
                index: 0,
                error: Some("Invalid recurring payment data or signature mismatch".into()),
                profile_id: String::new(),
                status: "Perfil inválido".into(),
                first_payment_date: 0,
                signature: "x=".into(),
            },
            ItemReturn {
                index: 1,
                error: None,
                profile_id: "rp-3-99-1".into(),
                status: "Active".into(),
                first_payment_date: 1_456_099_200,
                signature: "y+".into(),
            },
        ];
        assert_eq!(
            build(&r),
            "https://www.mywebtvdomain.com/index.php?go=store&do=payOrder&iq=99&tp=gid_3-step_2-rp_1&status=ERROR\
             &status_msg=Not+enough+money%3A+5.00+%3C+10.50&transaction=&signature=a%2Bb%2Fc%3D\
             &rp_0_error=Invalid+recurring+payment+data+or+signature+mismatch&rp_0_profile_id=&rp_0_status=Perfil+inv%C3%A1lido\
             &rp_0_first_payment_date=0&rp_0_signature=x%3D\
             &rp_1_profile_id=rp-3-99-1&rp_1_status=Active&rp_1_first_payment_date=1456099200&rp_1_signature=y%2B"
        );
    }
}
