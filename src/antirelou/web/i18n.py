"""French and English. Templates call t("English text"); French comes from this table.

English is the key, so a missing French entry shows English rather than a blank, and a
test checks that every key the templates use has its French. The language is the
operator's choice (stored on the account); the login page follows the browser.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi import Request

FR: dict[str, str] = {
    # navigation and common words
    "Dashboard": "Tableau de bord",
    "Overview": "Vue d'ensemble",
    "Messages": "Messages",
    "Incidents": "Incidents",
    "Incident": "Incident",
    "incident": "incident",
    "Controls": "Commandes",
    "Settings": "Réglages",
    "Audit log": "Journal des actions",
    "API tokens": "Jetons d'API",
    "Log in": "Se connecter",
    "Log out": "Se déconnecter",
    "Email": "E-mail",
    "Password": "Mot de passe",
    "Back": "Retour",
    "Not allowed": "Non autorisé",
    "Not done": "Action refusée",
    "yes": "oui",
    "no": "non",
    "on": "sur",
    "since": "depuis",
    "open": "ouvert",
    "day": "jour",
    "days": "jours",
    "viewer": "lecture",
    "moderator": "modération",
    "admin": "administration",
    "Why did I get a message from this number?": "Pourquoi ai-je reçu un message de ce numéro ?",
    "The form expired: please try again.": "Le formulaire a expiré : réessayez.",
    "Wrong email, password or code.": "E-mail, mot de passe ou code incorrect.",
    "Code from your authenticator app (or a recovery code), if your account has one": (
        "Code de votre application d'authentification (ou un code de secours), si votre "
        "compte en a une"
    ),
    "Too many failed attempts: wait 15 minutes.": "Trop d'essais manqués : attendez 15 minutes.",
    "My last logins": "Mes dernières connexions",
    "A login you do not recognise: change your password below, and tell an admin.": "Une "
    "connexion que vous ne reconnaissez pas : changez votre mot de passe ci-dessous, et "
    "prévenez une admin.",
    "Address": "Adresse",
    "Network": "Réseau",
    "new network: alert sent": "nouveau réseau : alerte envoyée",
    "Browsers that logged in to this account:": "Navigateurs qui se sont connectés à ce compte :",
    "Failed logins from other browsers never lock them out.": "Les essais manqués depuis "
    "d'autres navigateurs ne les bloquent jamais.",
    "Too many logins are being tried right now: wait a minute, or use a browser you "
    "logged in with before.": "Trop de connexions sont tentées en ce moment : attendez une "
    "minute, ou utilisez un navigateur avec lequel vous vous êtes déjà connectée.",
    "This account needs a second factor first: an admin runs "
    "`antirelou users totp enable EMAIL` on the server.": "Ce compte doit d'abord avoir un "
    "second facteur : un·e admin lance `antirelou users totp enable EMAIL` sur le serveur.",
    # overview
    "Raid in progress": "Raid en cours",
    "signals": "signaux",
    "new senders are held, not answered": "les nouveaux expéditeurs sont mis en attente",
    "Texts today": "SMS aujourd'hui",
    "New senders today": "Nouveaux expéditeurs",
    "Replies sent today": "Réponses envoyées",
    "Held now": "En attente",
    "Refused today": "Sans réponse aujourd'hui",
    "Queued": "À envoyer",
    "Texts and new senders": "SMS et nouveaux expéditeurs",
    "last hour": "dernière heure",
    "last day": "dernier jour",
    "last week": "dernière semaine",
    "texts": "SMS",
    "new senders": "nouveaux expéditeurs",
    "per minute": "par minute",
    "per 15 minutes": "par quart d'heure",
    "per hour": "par heure",
    "Money": "Argent",
    "Spent today": "Dépensé aujourd'hui",
    "Pot left": "Reste de la cagnotte",
    "Days of pot left at the last 7 days' pace": "Jours de cagnotte au rythme des 7 derniers jours",
    "no spending yet": "aucune dépense encore",
    "On the provider's account": "Sur le compte du fournisseur",
    "asked": "demandé le",
    "last question failed": "dernière demande en échec",
    "Lines": "Lignes",
    "Line": "Ligne",
    "paused": "en pause",
    "answering": "répond",
    # messages and senders
    "Text contains": "Le texte contient",
    "Sender number": "Numéro de l'expéditeur",
    "Any decision": "Toute décision",
    "From": "Du",
    "To": "Au",
    "Search": "Chercher",
    "Text search covers the texts since": "La recherche dans le texte couvre les SMS depuis le",
    "set a start date to search further back.": (
        "indiquez une date de début pour chercher plus loin."
    ),
    "No message.": "Aucun message.",
    "Older": "Plus anciens",
    "New texts arrived: show them": "De nouveaux SMS sont arrivés : les afficher",
    "Abusive text: click to read": "Texte injurieux : cliquez pour le lire",
    "decision:reply": "réponse",
    "decision:hold": "en attente",
    "decision:none": "pas de réponse",
    "reply": "réponse",
    "status:held": "en attente",
    "status:queued": "à envoyer",
    "status:sending": "en cours d'envoi",
    "status:sent": "envoyée",
    "status:delivered": "reçue",
    "status:undelivered": "non distribuée",
    "status:failed": "échec",
    "status:cancelled": "annulée",
    "Sender": "Expéditeur",
    "First seen": "Premier SMS",
    "Last seen": "Dernier SMS",
    "Texts": "SMS",
    "hostile": "hostiles",
    "Raider signals": "Signes de raid",
    "Last reply claimed": "Dernière réponse",
    "Opted out": "Désinscrit (STOP)",
    "Blocked until": "Bloqué jusqu'au",
    "for good": "définitivement",
    "Legal hold": "Conservation pour plainte",
    "End legal hold": "Lever la conservation",
    "Block": "Bloquer",
    "Unblock": "Débloquer",
    "Export evidence": "Exporter les preuves",
    "Replies": "Réponses",
    "Status": "État",
    "Created": "Créée",
    "Sent": "Envoyée",
    "Segments": "Segments",
    "Cost": "Coût",
    "No reply.": "Aucune réponse.",
    "History": "Historique",
    # incidents
    "Opened": "Ouvert",
    "Closed": "Fermé",
    "By": "Par",
    "Signals": "Signaux",
    "Figures": "Chiffres",
    "No incident yet.": "Aucun incident.",
    "Close the incident": "Fermer l'incident",
    "Its texts": "Ses SMS",
    "Timeline": "Chronologie",
    "Top senders": "Plus gros expéditeurs",
    "Copy-paste clusters": "Copier-coller",
    "senders": "expéditeurs",
    # controls
    "Lines are declared in the configuration file; here you switch them off and on.": (
        "Les lignes sont déclarées dans le fichier de configuration ; ici, on les coupe et "
        "on les rallume."
    ),
    "Resume": "Reprendre",
    "Why?": "Pourquoi ?",
    "Pause: stop every reply": "Pause : plus aucune réponse",
    "Close incident": "Fermer l'incident",
    "What did you see?": "Qu'avez-vous vu ?",
    "Open an incident": "Ouvrir un incident",
    "Held replies": "Réponses en attente",
    "Cancel every held reply": "Annuler toutes les réponses en attente",
    "Send now": "Envoyer maintenant",
    "Cancel": "Annuler",
    "Nothing is held.": "Rien en attente.",
    "Record a donation": "Enregistrer un don",
    "Who or what": "Qui ou quoi",
    "Record": "Enregistrer",
    # settings
    "Reply of": "Réponse de",
    "units": "unités",
    "segment(s)": "segment(s)",
    "per reply": "par réponse",
    "per 1,000 senders": "pour 1 000 expéditeurs",
    "UCS-2 because of": "UCS-2 à cause de",
    "Cheaper GSM-7 version": "Version GSM-7 moins chère",
    "Use it": "L'utiliser",
    "Save the reply": "Enregistrer la réponse",
    "Edited here; the configuration file says otherwise.": (
        "Modifiée ici ; le fichier de configuration dit autre chose."
    ),
    "Back to the configuration file's reply": "Revenir à la réponse du fichier de configuration",
    "Caps": "Plafonds",
    "Daily cap": "Plafond par jour",
    "Pot (before donations)": "Cagnotte (hors dons)",
    "Save the caps": "Enregistrer les plafonds",
    "Accounts": "Comptes",
    "active": "actif",
    "disabled": "désactivé",
    "second factor": "second facteur",
    "Change": "Modifier",
    "Add an account": "Ajouter un compte",
    "Password (12+ characters)": "Mot de passe (12 caractères ou plus)",
    "Add": "Ajouter",
    # tokens and audit
    (
        "A token acts with your role, or a lower one you choose. Send it as: "
        "Authorization: Bearer <token>. The API is described at"
    ): (
        "Un jeton agit avec votre rôle, ou un rôle moindre que vous choisissez. Envoyez-le "
        "ainsi : Authorization: Bearer <jeton>. L'API est décrite sur"
    ),
    "Your new token (shown once):": "Votre nouveau jeton (affiché une seule fois) :",
    "What is it for?": "À quoi sert-il ?",
    "Create a token": "Créer un jeton",
    "A token works until revoked, even after you log out: making one asks for your password.": (
        "Un jeton reste valable jusqu'à sa révocation, même après votre déconnexion : pour en "
        "créer un, il faut redonner votre mot de passe."
    ),
    "Your password": "Votre mot de passe",
    "My account": "Mon compte",
    "Revoke its API tokens": "Révoquer ses jetons d'API",
    "Set a new password": "Définir un nouveau mot de passe",
    "Set it": "Le définir",
    "Wrong password or code: the password was not set.": (
        "Mot de passe ou code incorrect : le mot de passe n'a pas été défini."
    ),
    "Change your own password on your account page.": (
        "Changez votre propre mot de passe sur la page de votre compte."
    ),
    "New password set: that account's sessions are closed.": (
        "Nouveau mot de passe défini : les sessions de ce compte sont fermées."
    ),
    "Every API token of that account is revoked.": (
        "Tous les jetons d'API de ce compte sont révoqués."
    ),
    "Works for": "Valable",
    "Acts as": "Agit comme",
    "with my role": "avec mon rôle",
    "read only, numbers masked": "lecture seule, numéros masqués",
    "30 days": "30 jours",
    "90 days": "90 jours",
    "one year": "un an",
    "until revoked": "jusqu'à révocation",
    "expires": "expire le",
    "Second factor: on.": "Second facteur : activé.",
    "Second factor: off. An admin turns it on, on the server, with": (
        "Second facteur : désactivé. Un admin l'active, sur le serveur, avec"
    ),
    "Change my password": "Changer mon mot de passe",
    "Every other session of this account is closed: a stolen session stops working.": (
        "Toutes les autres sessions de ce compte sont fermées : une session volée cesse de "
        "fonctionner."
    ),
    "Current password": "Mot de passe actuel",
    "New password (12 characters or more)": "Nouveau mot de passe (12 caractères ou plus)",
    "New password again": "Nouveau mot de passe, encore",
    "Wrong current password or code: the password was not changed.": (
        "Mot de passe actuel ou code incorrect : le mot de passe n'a pas été changé."
    ),
    "The two new passwords differ: the password was not changed.": (
        "Les deux nouveaux mots de passe diffèrent : le mot de passe n'a pas été changé."
    ),
    "the password needs at least 12 characters": (
        "le mot de passe doit compter au moins 12 caractères"
    ),
    "Password changed: every other session of this account is closed.": (
        "Mot de passe changé : toutes les autres sessions de ce compte sont fermées."
    ),
    "Code from your app": "Code de votre application",
    "Log out my other browsers": "Déconnecter mes autres navigateurs",
    "Trust this browser": "Faire confiance à ce navigateur",
    "An admin made this link: this browser can log in during an attack.": (
        "Une admin a créé ce lien : ce navigateur pourra se connecter pendant une attaque."
    ),
    "It works once; then log in as usual, with your password and code.": (
        "Il ne sert qu'une fois ; connectez-vous ensuite comme d'habitude, avec votre mot de "
        "passe et votre code."
    ),
    "This link is unknown, already used or expired: ask an admin for a new one.": (
        "Ce lien est inconnu, déjà utilisé ou expiré : demandez-en un nouveau à une admin."
    ),
    "This browser is trusted for {email}: log in.": (
        "Ce navigateur est reconnu pour {email} : connectez-vous."
    ),
    "Reverse proxy not believed": "Proxy inverse non reconnu",
    "requests from": "requêtes venues de",
    "carried X-Forwarded-For, which was ignored.": (
        "portaient un en-tête X-Forwarded-For, qui a été ignoré."
    ),
    "If it is your reverse proxy, add it to [web] forwarded_allow_ips and restart.": (
        "Si c'est votre proxy inverse, ajoutez-le à [web] forwarded_allow_ips et redémarrez."
    ),
    "Until then every visitor counts as that address: login limits, new-network alerts.": (
        "D'ici là, tous les visiteurs comptent pour cette adresse : limites de connexion, "
        "alertes de nouveau réseau."
    ),
    "If it is not, someone sends forged headers.": (
        "Sinon, quelqu'un envoie des en-têtes falsifiés."
    ),
    "A lost or stolen laptop or phone: its sessions end and it is trusted no more.": (
        "Un ordinateur ou un téléphone perdu ou volé : ses sessions sont fermées et il n'est "
        "plus reconnu."
    ),
    "This browser stays logged in.": "Ce navigateur reste connecté.",
    "Wrong password or code: no browser was logged out.": (
        "Mot de passe ou code incorrect : aucun navigateur n'a été déconnecté."
    ),
    "Your other browsers are logged out and trusted no more.": (
        "Vos autres navigateurs sont déconnectés et ne sont plus reconnus."
    ),
    "Wrong password or code: no token was made.": (
        "Mot de passe ou code incorrect : aucun jeton n'a été créé."
    ),
    "last used": "dernier usage",
    "revoked": "révoqué",
    "Revoke": "Révoquer",
    "When": "Quand",
    "Who": "Qui",
    "What": "Quoi",
    "Target": "Cible",
    "Details": "Détails",
    # flashes
    "The line is paused: no reply will be sent.": "La ligne est en pause : aucune réponse ne part.",
    "The line answers again.": "La ligne répond de nouveau.",
    "Incident opened: new senders are held.": (
        "Incident ouvert : les nouveaux expéditeurs sont mis en attente."
    ),
    "Incident closed.": "Incident fermé.",
    "The reply is queued.": "La réponse part.",
    "Cancelled.": "Annulé.",
    "Sender blocked.": "Expéditeur bloqué.",
    "Sender unblocked.": "Expéditeur débloqué.",
    "Legal hold changed.": "Conservation modifiée.",
    "Donation recorded.": "Don enregistré.",
    "The reply is saved: texts from now on get it.": (
        "Réponse enregistrée : les prochains SMS la recevront."
    ),
    "Caps saved.": "Plafonds enregistrés.",
    "Account saved.": "Compte enregistré.",
    "Token revoked.": "Jeton révoqué.",
    # raid signals and figures
    "hostile_senders": "expéditeurs hostiles",
    "new_sender_surge": "afflux de nouveaux numéros",
    "operator": "ouvert à la main",
    "note": "note",
    "new_senders_per_minute": "nouveaux par minute",
    "baseline_per_minute": "normale par minute",
    "hostile_texts_2min": "SMS hostiles (2 min)",
    "hostile_new_senders_2min": "nouveaux hostiles (2 min)",
    "odd_shaped_new_senders_2min": "numéros suspects (2 min)",
    "texts_2min": "SMS (2 min)",
    # decision reasons (policy.Reason values)
    "first_text_in_window": "premier SMS",
    "reply_delayed": "réponse différée",
    "already_replied_in_window": "déjà répondu",
    "opt_out_keyword": "STOP reçu",
    "opt_in_keyword": "réinscription",
    "sender_opted_out": "désinscrit",
    "alphanumeric_sender": "expéditeur alphanumérique",
    "short_code": "numéro court",
    "premium_rate": "numéro surtaxé",
    "not_mobile": "pas un mobile",
    "invalid_number": "numéro invalide",
    "country_not_allowed": "pays non servi",
    "sender_is_a_line": "une de nos lignes",
    "unknown_line": "ligne inconnue",
    "line_paused": "ligne en pause",
    "daily_cap_reached": "plafond du jour atteint",
    "pot_exhausted": "cagnotte épuisée",
    "sender_blocked": "expéditeur bloqué",
    "held_during_incident": "en attente (incident)",
    "abusive_first_text": "premier SMS injurieux",
    "copy_paste_cluster": "copier-coller",
    "high_velocity": "rafale de SMS",
    "raid_number_block": "bloc de numéros",
    "reply_to_every_text": "réponse à chaque SMS",
}


# A code rather than words ("status:sent", "reason:daily_cap_reached"): shown as its last part
# when no translation is known. A sentence with a colon is no code and is shown whole.
_CODE = re.compile(r"[a-z_]+:([a-z0-9_]+)")


def _untranslated(key: str, english: bool) -> str:
    code = _CODE.fullmatch(key)
    if code is None:
        return key
    return code.group(1).replace("_", " ") if english else code.group(1)


def translator(lang: str) -> Callable[[str], str]:
    if lang == "fr":
        return lambda key: FR.get(key, _untranslated(key, english=False))
    return lambda key: _ENGLISH.get(key, _untranslated(key, english=True))


# English words for the keys that are codes rather than English text.
_ENGLISH = {
    "viewer": "viewer",
    "moderator": "moderator",
    "admin": "admin",
    "status:sent": "sent",
    "decision:none": "no reply",
    "decision:hold": "held",
    "new_sender_surge": "new sender surge",
    "hostile_senders": "hostile senders",
    "operator": "opened by hand",
}


def step_label(minutes: int, t: Callable[[str], str]) -> str:
    return t({1: "per minute", 15: "per 15 minutes"}.get(minutes, "per hour"))


def pick_language(request: Request) -> str:
    """For pages without an operator: ?lang=, else the browser's preference, else French."""
    asked = request.query_params.get("lang", "")
    if asked in ("fr", "en"):
        return asked
    accept = request.headers.get("accept-language", "").lower()
    return "en" if accept.startswith("en") else "fr"
