// Dashboard strings in French and English. The language comes from the toggle
// (remembered), else the browser's language: French for fr-*, English otherwise.
"use strict";

const STRINGS = {
  fr: {
    height: "Hauteur", connecting: "connexion…", live: "à jour", offline: "nœud injoignable",
    household_key: "Clé du foyer", show: "Afficher", my_household: "Mon foyer",
    balance_kwh: "Énergie (kWh)", balance_hour: "Temps (heures)", balance_other: "Autres jetons",
    issued: "Émis par la mairie",
    produced_48: "Produit (48 demi-heures)", consumed_48: "Consommé (48 demi-heures)",
    energy_chart: "Production et consommation par demi-heure", production: "production",
    consumption: "consommation", chart_hint: "Touchez une barre pour voir qui a utilisé votre énergie.",
    who_used: "Qui a utilisé mon énergie", neighbour: "Voisin", energy: "Énergie", none_yet: "Rien pour l'instant.",
    my_gifts: "Mes dons permanents", beneficiary: "Bénéficiaire", share: "Part", until: "Jusqu'au",
    no_gifts: "Aucun don.", my_vote: "Ma délégation et mon vote", no_delegation: "Aucune délégation.",
    my_ballot: "Mon bulletin", no_ballot: "Pas de bulletin : votre voix suit votre délégation.",
    activity: "Activité récente", the_commune: "La commune", treasury: "Trésor", households: "Foyers",
    minted: "Énergie produite (total)", allocation: "Répartition du surplus",
    standing_now: "selon les votes actuels", applied_last: "appliquée à la dernière période",
    funds: "Fonds par catégorie", category: "Catégorie", balance: "Solde", received: "Reçu", spent: "Dépensé",
    spends: "Dépenses", no_spends: "Aucune dépense récente.", validators: "Validateurs", name: "Nom", heartbeat: "Signe de vie",
    current_round: "Tour en cours", last_commit_round: "dernier bloc décidé au tour",
    round: "Tour", signed: "A signé", link: "Lien", health: "État", ok: "sain", equivocating: "double signature",
    connected: "connecté", disconnected: "déconnecté", this_node: "ce nœud", yes: "oui", no: "non",
    interval: "demi-heure de", not_household: "Cette clé n'est pas un foyer inscrit. Saisissez la clé d'un foyer.",
    unknown_account: "Compte inconnu pour l'instant.", bad_addr: "Une clé fait 64 caractères hexadécimaux.",
    delegation_none: "personne (bloque *)", topic_all: "tous les sujets (*)", topic_allocation: "répartition",
    topic_params: "paramètres", rule_independent_markets: "règle : marchés indépendants", rule_mean: "règle : moyenne",
    sent: "envoyé à", got: "reçu de", gift_to: "don à", gift_from: "don de", solidarity: "les foyers solidaires", service_for: "service payé à",
    service_by: "service rendu à", tx_other: "opération",
    "tx/transfer": "virement", "tx/gift": "don permanent", "tx/revoke-gift": "fin de don", "tx/service": "service",
    "tx/offer": "offre", "tx/accept": "échange accepté", "tx/spend": "dépense", "tx/delegate": "délégation",
    "tx/ballot": "bulletin", "tx/propose": "proposition", "tx/vote": "vote", "tx/register": "inscription",
    "tx/update": "mise à jour du foyer", "tx/public-service": "astreinte", "tx/reading": "relevé",
    "tx/deregister": "départ du foyer", "tx/rotate-key": "changement de clé", "tx/recover-key": "récupération de clé",
    "tx/cancel-recovery": "récupération annulée", "tx/send-to-commune": "envoi vers une autre commune",
    recovery_pending: "Récupération de clé en cours : la clé {key} remplacera celle-ci le {when}.",
    recovery_hint: "Si vous ne l'avez pas demandée : voisinage tx cancel-recovery --key VOTRE_CLE.",
    key_rotated: "Cette clé a été remplacée par la clé {key}.",
    moved_out: "Ce foyer a déménagé (bloc {height}) ; le solde reste à cette clé.",
    cat_pensions: "Retraites", cat_energy: "Énergie collective", cat_roads: "Voirie", cat_startups: "Jeunes entreprises",
    cat_canteen: "Cantine", cat_security: "Sécurité",
    communes_title: "Échanges avec d'autres communes", linked_commune: "Commune liée", escrowed: "En dépôt",
    in_flight: "En route", client_state: "Client léger", direction: "Sens", their_vouchers: "Leurs bons ici",
    no_links: "Aucune commune liée.", xfer_from: "De", xfer_to: "À", vouchers_of: "bons de {commune}",
    "xfer_in-flight": "en route", xfer_delivered: "livré", "xfer_timed-out": "remboursé après expiration du délai",
    xfer_refunded: "remboursé : refusé par l'autre commune", xfer_refused: "refusé, l'envoyeur est remboursé",
    xfer_reason_bad_receiver: "destinataire invalide", xfer_reason_receiver_moved: "le destinataire a changé de clé",
    xfer_reason_receiver_erased: "compte du destinataire effacé", xfer_reason_bad_denom: "jeton inconnu",
    xfer_reason_unsupported_denom: "jeton d'une autre commune", xfer_reason_escrow_short: "dépôt insuffisant",
    amount: "Montant", no_transfers: "Aucun échange avec une autre commune.", sent_to: "Envoyé à",
    received_from: "Reçu de", client_frozen: "Client gelé (en-têtes contradictoires)", header: "en-tête",
    own_misbehaviour: "Nos validateurs ont signé deux blocs",
    euro_title: "Rachats en euros", payouts_owed: "Dû aux foyers", payouts_paid: "Versé",
    reconcile_title: "Réconciliation avec les courbes officielles", reconciled_share: "Énergie réconciliée",
    corrections_minted: "Créé par correction", corrections_burned: "Détruit par correction", household: "Foyer",
    streak: "Jours d'écart", deviation: "Dernier écart", no_flagged: "Aucun foyer signalé.",
    reconcile_hh_title: "Compteur et données officielles", interval: "Demi-heure", provisional: "Compteur",
    official: "Officiel", correction: "Correction", no_reconciled: "Aucune demi-heure réconciliée.",
    consent_yes: "Consentement enregistré", consent_no: "Pas de consentement", flagged: "signalé",
    "tx/consent": "consentement", "tx/reconcile": "réconciliation officielle",
    debts_paid: "Dettes réglées en euros", amount_eur: "Montant", date: "Date", payout_status: "État",
    no_payouts: "Aucun rachat à verser.", status_owed: "à verser", status_paid: "versé", fund: "fonds",
    "tx/redeem": "rachat en euros", "tx/pay-debt": "dette réglée en euros", "tx/mark-paid": "rachat versé",
    "tx/association": "inscription d'association", "tx/remove-association": "radiation d'association",
    reg_title: "Registre de la mairie", reg_registrars: "Secrétaires de mairie",
    reg_delay: "Délai de récupération d'une clé", reg_recoveries: "Récupérations de clé en cours",
    household: "Foyer", reg_new_key: "Nouvelle clé", reg_completes: "Effective le",
    reg_no_recoveries: "Aucune récupération en cours.",
    reg_cancel_hint: "L'ancienne clé peut annuler jusqu'à l'échéance (voisinage tx cancel-recovery).",
    reg_moved_out: "Foyers partis", reg_key: "Clé", reg_since_block: "Depuis le bloc", reg_no_moves: "Aucun départ.",
    days: "{n} j", hours: "{n} h", minutes: "{n} min",
    load_key: "Fichier de clé du foyer", no_key: "aucune clé chargée", forget_key: "Oublier la clé",
    key_loaded: "clé {key} chargée (dans cet onglet seulement)", not_key_file: "Ce fichier n'est pas un fichier de clé.",
    no_webcrypto: "Ce navigateur ne sait pas signer (ouvrez la page en https ou sur cette machine).",
    key_mismatch: "Fichier de clé abîmé : la clé publique ne correspond pas.",
    private_locked: "Données privées : chargez le fichier de clé de ce foyer pour voir sa courbe, ses soldes et ses échanges.",
    private_refused: "Données privées : la clé chargée n'est pas celle de ce foyer, le nœud refuse.",
    consumers_summary: "{n} foyers (le vôtre compris) ont utilisé {wh} de votre énergie ici.",
    consumers_summary_light: "La commune (votre foyer compris) a utilisé {wh} de votre énergie ici ; ce nœud léger ne sait pas combien de foyers.",
    consumers_hidden_light: "Trop peu de foyers dans ce créneau : seuls les validateurs de la mairie connaissent ses sommes, ce nœud léger ne peut pas dire combien de votre énergie a servi ici.",
    consent_title: "Accès de tiers à mes données", authorize_title: "Demande d'accès", approve: "Accepter",
    deny: "Refuser", authorize_paste: "Lien de demande d'un tiers", grants: "Autorisations", client: "Tiers",
    scopes: "Données", no_grants: "Aucune autorisation.", access_log: "Journal des accès", reader: "Lecteur",
    period: "Période", answer: "Réponse", no_access: "Aucun accès.", you: "vous", revoke: "Retirer",
    grant_active: "active", grant_expired: "expirée", grant_revoked: "retirée",
    scope_consumption_load_curve: "courbe de consommation", scope_production_load_curve: "courbe de production",
    scope_daily_consumption: "consommation par jour", scope_max_power: "puissance max par jour",
    authorize_bad: "Demande invalide", authorize_asks: "{client} demande à lire : {scopes}, pendant {days} jours (point de livraison {prm}).",
    authorize_done: "Accordé : continuer vers {client}", authorize_denied: "Refusé : retourner vers {client}",
    aggregates_title: "La commune par demi-heure", sum_e: "injecté (ΣE)", sum_i: "soutiré (ΣI)",
    aggregates_note: "Une somme de moins de {min} foyers n'est pas publiée ({n} demi-heures masquées).",
    aggregates_note_light: "Ce nœud de foyer léger ne détient que les relevés de son foyer : il ne peut pas compter les foyers, donc ne publie aucune somme ({n} demi-heures masquées). La page d'un validateur les montre.",
  },
  en: {
    height: "Height", connecting: "connecting…", live: "live", offline: "node unreachable",
    household_key: "Household key", show: "Show", my_household: "My household",
    balance_kwh: "Energy (kWh)", balance_hour: "Time (hours)", balance_other: "Other tokens",
    issued: "Issued by the town hall",
    produced_48: "Produced (48 half hours)", consumed_48: "Consumed (48 half hours)",
    energy_chart: "Production and consumption per half hour", production: "production",
    consumption: "consumption", chart_hint: "Tap a bar to see who used your energy.",
    who_used: "Who used my energy", neighbour: "Neighbour", energy: "Energy", none_yet: "Nothing yet.",
    my_gifts: "My standing gifts", beneficiary: "Beneficiary", share: "Share", until: "Until",
    no_gifts: "No gifts.", my_vote: "My delegation and ballot", no_delegation: "No delegation.",
    my_ballot: "My ballot", no_ballot: "No ballot: your voice follows your delegation.",
    activity: "Recent activity", the_commune: "The commune", treasury: "Treasury", households: "Households",
    minted: "Energy produced (total)", allocation: "Split of the surplus",
    standing_now: "by the ballots standing now", applied_last: "applied at the last epoch",
    funds: "Category funds", category: "Category", balance: "Balance", received: "Received", spent: "Spent",
    spends: "Spending", no_spends: "No recent spending.", validators: "Validators", name: "Name", heartbeat: "Heartbeat",
    current_round: "Current round", last_commit_round: "last block decided in round",
    round: "Round", signed: "Signed", link: "Link", health: "Health", ok: "healthy", equivocating: "equivocating",
    connected: "connected", disconnected: "disconnected", this_node: "this node", yes: "yes", no: "no",
    interval: "half hour of", not_household: "This key is not a registered household. Enter a household's key.",
    unknown_account: "Unknown account so far.", bad_addr: "A key is 64 hexadecimal characters.",
    delegation_none: "nobody (blocks *)", topic_all: "every topic (*)", topic_allocation: "allocation",
    topic_params: "parameters", rule_independent_markets: "rule: independent markets", rule_mean: "rule: mean",
    sent: "sent to", got: "received from", gift_to: "gift to", gift_from: "gift from", solidarity: "the households in need", service_for: "service paid to",
    service_by: "service done for", tx_other: "transaction",
    "tx/transfer": "transfer", "tx/gift": "standing gift", "tx/revoke-gift": "gift ended", "tx/service": "service",
    "tx/offer": "offer", "tx/accept": "exchange accepted", "tx/spend": "spending", "tx/delegate": "delegation",
    "tx/ballot": "ballot", "tx/propose": "proposal", "tx/vote": "vote", "tx/register": "registration",
    "tx/update": "household update", "tx/public-service": "on-call duty", "tx/reading": "meter reading",
    "tx/deregister": "moving out", "tx/rotate-key": "key change", "tx/recover-key": "key recovery",
    "tx/cancel-recovery": "recovery cancelled", "tx/send-to-commune": "transfer to another commune",
    recovery_pending: "Key recovery pending: key {key} replaces this one on {when}.",
    recovery_hint: "If you did not ask for it: voisinage tx cancel-recovery --key YOUR_KEY.",
    key_rotated: "This key was replaced by key {key}.",
    moved_out: "This household moved out (block {height}); the balance stays with this key.",
    cat_pensions: "Pensions", cat_energy: "Collective energy", cat_roads: "Roads", cat_startups: "Local start-ups",
    cat_canteen: "Canteen", cat_security: "Security",
    communes_title: "Transfers with other communes", linked_commune: "Linked commune", escrowed: "In escrow",
    in_flight: "In flight", client_state: "Light client", direction: "Direction", their_vouchers: "Their vouchers here",
    no_links: "No linked commune.", xfer_from: "From", xfer_to: "To", vouchers_of: "vouchers of {commune}",
    "xfer_in-flight": "in flight", xfer_delivered: "delivered", "xfer_timed-out": "refunded after timeout",
    xfer_refunded: "refunded: refused by the other commune", xfer_refused: "refused, the sender is refunded",
    xfer_reason_bad_receiver: "invalid receiver", xfer_reason_receiver_moved: "the receiver changed key",
    xfer_reason_receiver_erased: "the receiver's account was erased", xfer_reason_bad_denom: "unknown token",
    xfer_reason_unsupported_denom: "another commune's token", xfer_reason_escrow_short: "escrow too small",
    amount: "Amount", no_transfers: "No transfer with another commune.", sent_to: "Sent to",
    received_from: "Received from", client_frozen: "Client frozen (conflicting headers)", header: "header",
    own_misbehaviour: "Our validators signed two blocks",
    euro_title: "Redemptions in euros", payouts_owed: "Owed to households", payouts_paid: "Paid out",
    reconcile_title: "Reconciliation with official load curves", reconciled_share: "Energy reconciled",
    corrections_minted: "Minted by corrections", corrections_burned: "Burned by corrections", household: "Household",
    streak: "Days off", deviation: "Last deviation", no_flagged: "No household flagged.",
    reconcile_hh_title: "Meter and official data", interval: "Half hour", provisional: "Meter",
    official: "Official", correction: "Correction", no_reconciled: "No reconciled half hour.",
    consent_yes: "Consent recorded", consent_no: "No consent", flagged: "flagged",
    "tx/consent": "consent", "tx/reconcile": "official reconciliation",
    debts_paid: "Debts paid in euros", amount_eur: "Amount", date: "Date", payout_status: "Status",
    no_payouts: "No payout owed.", status_owed: "owed", status_paid: "paid", fund: "fund",
    "tx/redeem": "redemption in euros", "tx/pay-debt": "debt paid in euros", "tx/mark-paid": "payout paid",
    "tx/association": "association registered", "tx/remove-association": "association struck off",
    reg_title: "The mairie's register", reg_registrars: "Registrars",
    reg_delay: "Key recovery delay", reg_recoveries: "Key recoveries under way",
    household: "Household", reg_new_key: "New key", reg_completes: "Takes effect",
    reg_no_recoveries: "No recovery under way.",
    reg_cancel_hint: "The old key can cancel until then (voisinage tx cancel-recovery).",
    reg_moved_out: "Households that moved out", reg_key: "Key", reg_since_block: "Since block",
    reg_no_moves: "Nobody moved out.", days: "{n} d", hours: "{n} h", minutes: "{n} min",
    load_key: "Household key file", no_key: "no key loaded", forget_key: "Forget the key",
    key_loaded: "key {key} loaded (in this tab only)", not_key_file: "This file is not a key file.",
    no_webcrypto: "This browser cannot sign (open the page over https or on this machine).",
    key_mismatch: "Damaged key file: the public key does not match.",
    private_locked: "Private data: load this household's key file to see its curve, balances and trades.",
    private_refused: "Private data: the loaded key is not this household's, the node refuses.",
    consumers_summary: "{n} households (yours included) used {wh} of your energy here.",
    consumers_summary_light: "The commune (your household included) used {wh} of your energy here; this light node does not know how many households.",
    consumers_hidden_light: "Too few households in this interval: only the mairie's validators know its sums, so this light node cannot tell how much of your energy was used here.",
    consent_title: "Third-party access to my data", authorize_title: "Access request", approve: "Approve",
    deny: "Deny", authorize_paste: "A third party's request link", grants: "Grants", client: "Third party",
    scopes: "Data", no_grants: "No grant.", access_log: "Access log", reader: "Reader",
    period: "Period", answer: "Answer", no_access: "No access.", you: "you", revoke: "Revoke",
    grant_active: "active", grant_expired: "expired", grant_revoked: "revoked",
    scope_consumption_load_curve: "consumption curve", scope_production_load_curve: "production curve",
    scope_daily_consumption: "daily consumption", scope_max_power: "daily max power",
    authorize_bad: "Invalid request", authorize_asks: "{client} asks to read: {scopes}, for {days} days (usage point {prm}).",
    authorize_done: "Granted: continue to {client}", authorize_denied: "Denied: back to {client}",
    aggregates_title: "The commune per half hour", sum_e: "fed in (ΣE)", sum_i: "drawn (ΣI)",
    aggregates_note: "A sum of fewer than {min} households is not published ({n} half hours hidden).",
    aggregates_note_light: "This light household node holds only its own household's records: it cannot count the households, so it publishes no sum ({n} half hours hidden). A validator's page shows them.",
  },
};

const LANG_KEY = "voisinage.lang";

function pickLanguage() {
  const saved = window.localStorage ? localStorage.getItem(LANG_KEY) : null;
  if (saved === "fr" || saved === "en") return saved;
  const wanted = (navigator.languages && navigator.languages[0]) || navigator.language || "fr";
  return wanted.toLowerCase().startsWith("fr") ? "fr" : "en";
}

const I18N = {
  lang: pickLanguage(),
  t(key) {
    const table = STRINGS[this.lang];
    return key in table ? table[key] : (key in STRINGS.en ? STRINGS.en[key] : key);
  },
  format(key, values) {
    return this.t(key).replace(/\{(\w+)\}/g, (_, name) => String(values[name]));
  },
  category(name) {
    const key = "cat_" + name;
    return key in STRINGS[this.lang] ? STRINGS[this.lang][key] : name;
  },
  set(lang) {
    this.lang = lang;
    try { localStorage.setItem(LANG_KEY, lang); } catch (e) { /* private mode: not remembered */ }
    this.apply();
  },
  apply() {
    document.documentElement.lang = this.lang;
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = this.t(el.dataset.i18n);
    const toggle = document.getElementById("lang-toggle");
    toggle.textContent = this.lang === "fr" ? "EN" : "FR";
    toggle.title = this.lang === "fr" ? "English" : "Français";
  },
  number(value, digits) {
    return value.toLocaleString(this.lang === "fr" ? "fr-FR" : "en-GB",
      {minimumFractionDigits: digits, maximumFractionDigits: digits});
  },
  time(unixS) {
    return new Date(unixS * 1000).toLocaleString(this.lang === "fr" ? "fr-FR" : "en-GB",
      {day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit"});
  },
  euros(cents) {
    return (cents / 100).toLocaleString(this.lang === "fr" ? "fr-FR" : "en-GB",
      {style: "currency", currency: "EUR"});
  },
  hour(unixS) {
    return new Date(unixS * 1000).toLocaleTimeString(this.lang === "fr" ? "fr-FR" : "en-GB",
      {hour: "2-digit", minute: "2-digit"});
  },
};
window.I18N = I18N;
