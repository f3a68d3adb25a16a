"""What people write to a decoy number, in French: genuine men, curious testers, raiders.

The texts are assembled from fragments so that thousands of senders do not all write the same
words, as they would not in life; raiders, on the contrary, paste the few texts their forum
thread handed out, with the light edits people make to slip past exact matching. The raid
vocabulary comes from the press coverage of 2017 ("augmenter la dette des féministes", "vider
la cagnotte", messages "mille par mille") and from the slang of the forum that ran the raid.
"""

from __future__ import annotations

import random

MEN = (
    "Thomas", "Nicolas", "Julien", "Kevin", "Maxime", "Alexandre", "Romain", "Antoine", "Lucas",
    "Hugo", "Mehdi", "Karim", "Yanis", "Florian", "Guillaume", "Quentin", "Jérémy", "Sébastien",
    "Anthony", "Benjamin", "Adrien", "Clément", "Mathieu", "Sofiane", "Vincent", "Olivier",
    "Loïc", "Damien", "Jonathan", "Pierre", "Arthur", "Bastien", "Samir", "Dylan", "Fabien",
)  # fmt: skip
WOMEN = (
    "Julie", "Camille", "Sarah", "Léa", "Manon", "Chloé", "Emma", "Inès", "Marine", "Laura",
    "Pauline", "Clara", "Mélanie", "Lucie", "Anaïs", "Justine", "Élodie", "Amandine", "Nadia",
)  # fmt: skip
PLACES = (
    "au bar", "à la soirée chez Max", "au concert", "dans le métro", "à la terrasse",
    "au Baron", "à la soirée d'Halloween", "en boîte", "au karaoké", "à l'apéro", "au resto",
    "à la fête de la musique", "au festival", "au Macumba", "à la Bellevilloise", "au pub",
    "dans le bus de nuit", "à l'arrêt de tram", "à la salle de sport", "au mariage de Seb",
)  # fmt: skip
MEDIA = (
    "Libération", "franceinfo", "20 Minutes", "Le Parisien", "RTL", "Konbini", "Le Monde",
    "BFMTV", "Europe 1", "Ouest-France", "Madmoizelle", "France Inter",
)  # fmt: skip
EMOJI = ("😊", "😉", "🙂", "😘", "😁", "😅", "👋", "🍻", "🥂", "❤️")


class Texts:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, options: tuple[str, ...] | list[str]) -> str:
        return self.rng.choice(options)

    def _maybe(self, chance: float, text: str) -> str:
        return text if self.rng.random() < chance else ""

    # --- genuine men ---------------------------------------------------------------------

    def genuine_first(self) -> str:
        """A man texting the number a woman gave him, believing it is hers."""
        me, her, place = self.pick(MEN), self.pick(WOMEN), self.pick(PLACES)
        emoji = self._maybe(0.4, " " + self.pick(EMOJI))
        forms = (
            f"Salut c'est {me}, on s'est parlé {place} tout à l'heure{emoji}",
            f"Coucou {her} ! C'est {me} {place}, bien rentrée ?{emoji}",
            f"Hey c'est {me}, tu m'avais dit de t'écrire{emoji}",
            f"Bonsoir {her}, c'est {me}, le mec {place}. Ravi de t'avoir rencontrée",
            f"Salut ! C'est {me}{emoji} tu fais quoi ce week-end ?",
            f"Yo c'est {me} {place}, on se fait un verre un de ces jours ?",
            f"{her} ? C'est {me}. J'ai passé une super soirée avec toi{emoji}",
            f"Hello c'est {me}, t'es partie vite {place} ! On se revoit quand ?",
            f"Bonsoir, c'est {me}, on s'est croisés {place}. Tu veux qu'on se voie demain ?",
            f"Cc c'est {me.lower()} {place} 😊 t'es encore dans le coin ?",
            f"Salut {her}, j'espère que c'est bien ton numéro lol. {me}",
            f"C'est {me}, je t'ai offert un verre {place}, tu te souviens de moi ?",
        )
        return self.pick(forms)

    def genuine_again(self) -> str:
        """What a man sends after the reply, or after no answer."""
        return self.pick(
            (
                "T'es là ?", "Tu réponds pas ?", "Sérieux ?", "Ah ok... c'était un faux numéro",
                "Pff", "Ok j'ai compris", "Désolé si j'ai insisté", "C'est pas drôle",
                "Donc c'est non ?", "Ok bonne soirée quand même", "??", "Bon tant pis",
                "Elle aurait pu me dire non direct", "C'est quoi ce numéro ?",
                "Je voulais juste discuter", "Ah d'accord. Pardon.",
            )
        )  # fmt: skip

    # --- curious testers and supporters ---------------------------------------------------

    # Common short forms (most are what thousands of testers really send), then the parts
    # people combine in their own words.
    SHORT_TESTS = (
        "test", "Test", "test test", "Test 😄", "Coucou test", "ça marche ?", "Ça marche ?",
        "Bravo pour l'initiative", "bravo", "Coucou", "Hello ?", "Salut, je teste",
        "Merci pour cette initiative !", "Trop bien", "Super idée", "Essai",
    )  # fmt: skip
    REACTIONS = (
        "super idée", "trop bien cette idée", "quelle bonne idée", "génial", "j'adore le concept",
        "c'est malin", "enfin", "il était temps", "merci pour ça", "bravo à vous",
        "excellente initiative", "chapeau", "c'est top", "respect", "trop fort",
        "c'est brillant", "je valide", "vous êtes géniales", "belle idée", "c'est tellement utile",
        "merci d'exister", "ça fait du bien", "génial le principe", "quelle idée de génie",
    )  # fmt: skip
    CONTEXTS = (
        "je teste", "je voulais voir la réponse", "je l'ai vu sur Twitter", "vu sur Facebook",
        "ma pote m'a envoyé le lien", "je viens de lire l'article", "je partage à mes amies",
        "je le garde dans mes contacts", "je vais le donner samedi", "je l'enregistre",
        "je teste avant de le donner", "ma sœur m'en a parlé", "on en parle au boulot",
        "je le donne dès ce soir", "curieuse de voir ce que ça dit", "j'en aurais eu besoin hier",
        "j'aurais aimé l'avoir plus tôt", "c'est noté dans mon téléphone", "mon coloc m'a montré",
        "je vérifie que ça marche", "une copine l'a partagé", "je vais en parler autour de moi",
        "je l'ai vu passer sur Insta", "je suis un homme et je soutiens",
        "je l'ai envoyé à ma fille", "hâte de l'utiliser",
    )  # fmt: skip

    def tester_first(self) -> str:
        """Someone who heard of the number and texts it to see what it answers."""
        roll = self.rng.random()
        if roll < 0.02:
            return self._journalist()
        if roll < 0.40:
            return self.pick(self.SHORT_TESTS)
        parts = [self.pick(self.REACTIONS), self.pick(self.CONTEXTS)]
        if self.rng.random() < 0.35:
            parts = parts[1:]
        elif self.rng.random() < 0.4:
            parts.reverse()
        return self._compose(parts)

    def _compose(self, parts: list[str]) -> str:
        joiner = self.pick((", ", " ! ", ". ", " "))
        if joiner in (" ! ", ". ") and len(parts) > 1 and self.rng.random() < 0.7:
            parts = [parts[0], parts[1][0].upper() + parts[1][1:]]
        hello = self.pick(("", "", "", "Coucou ", "Salut ", "Bonjour ", "Hello ", "Cc "))
        text = hello + joiner.join(parts)
        tail = self.pick(("", "", "", " !", " 😄", " 👏", " 💪", " ❤️", " :)", " 🙏"))
        text = (text + tail).strip()
        return text[0].upper() + text[1:] if self.rng.random() < 0.6 else text

    def _journalist(self) -> str:
        media, name = self.pick(MEDIA), self.pick(WOMEN + MEN)
        return self.pick(
            (
                f"Bonjour, je suis journaliste à {media}, pourriez-vous me rappeler ?",
                f"Bonjour, {name} de {media}. Nous préparons un sujet sur votre numéro, "
                "êtes-vous joignables aujourd'hui ?",
                f"{name}, {media} : on peut parler de votre numéro anti-relou demain ?",
                f"Bonjour ! Journaliste ({media}), j'aimerais vous interviewer. "
                "Merci de me recontacter",
            )
        )

    def tester_again(self) -> str:
        return self.pick(
            (
                "Haha génial", "Top, merci !", "Trop bien la réponse", "Bravo 👏",
                "Parfait, je le donne ce soir", "Excellente réponse", "J'adore", "ok merci",
                "Super, je partage", "Merci ❤️", "Ça marche !", "Re-test", "lol", "Top",
                "La réponse est parfaite", "Ahah j'adore le message", "Merci !", "Bien vu",
                "Je vais m'en servir", "Parfait", "Nickel", "Yes ça marche", "mdr génial",
                "Hâte qu'un relou tombe dessus", "Bien joué", "Trop cool", "ok",
            )
        )  # fmt: skip

    def supporter_first(self, show: str) -> str:
        """A viewer texting after a TV mention: often the show in a few words, and a cheer."""
        if self.rng.random() < 0.5:
            return self.tester_first()
        seen = self.pick(
            (
                f"je viens de vous voir dans {show}", f"vu dans {show}", "vu à la télé",
                f"le reportage de {show} m'a convaincue", f"je regardais {show}",
                f"merci pour le passage dans {show}", "ma fille m'a dit de tester",
                "je note le numéro pour samedi", "je viens de voir le reportage",
                f"c'est bien le numéro de {show} ?",
            )
        )  # fmt: skip
        parts = [seen, self.pick(self.REACTIONS)] if self.rng.random() < 0.7 else [seen]
        return self._compose(parts)

    # --- raiders -------------------------------------------------------------------------

    # The texts a forum thread hands out; each raider pastes one, often lightly edited.
    PASTES = (
        "On va augmenter la dette des féministes, chaque SMS vous coûte 16 centimes",
        "Vider la cagnotte avant que ça devienne rentable, le 18-25 vous salue",
        "Ceci est un message du forum, vos 16 centimes sont à nous",
        "Merci pour la réponse à 16 centimes, on en renvoie mille",
        "Je suis un relou et j'assume, répondez moi encore une fois",
        "Votre cagnotte va fondre comme neige au soleil mes kheys",
        "Message automatique du 18-25 : la cagnotte c'est fini",
        "Alors ça fait combien la facture ce soir les féministes ?",
    )
    INSULTS = (
        "sale pute", "Ferme ta gueule", "connasse", "salope va", "grosse pute de féministe",
        "Sale féministe de merde", "t'es qu'une pute", "ta gueule la féminazie",
        "pauvre conne", "espèce de tarée", "Va te faire foutre connasse",
        "mal baisée va", "Sale chienne", "t'es moche et conne",
    )  # fmt: skip
    THREATS = (
        "on sait où tu habites", "Tu vas le regretter salope", "surveille tes arrières",
        "on va te retrouver crois moi",
    )  # fmt: skip
    SLANG = (
        "ayaa", "AYAAAA", "issou", "Issou la chancla", "khey", "Le 18-25 en force",
        "risitas", "JVC en force les kheys", "+1 le khey", "ahi", "el risitas",
    )  # fmt: skip

    def _edit(self, text: str) -> str:
        """The light edits of a copy-paste: punctuation, case, emoji, a word added."""
        roll = self.rng.random()
        if roll < 0.3:
            return text
        if roll < 0.45:
            return text.upper()
        if roll < 0.6:
            return text + " " + self.pick(("😂", "🤣", "lol", "ayaa", "mdr", "👋", "💸", "🖕"))
        if roll < 0.75:
            return text + "!" * self.rng.randint(1, 4)
        if roll < 0.88:
            return self.pick(("Salut ", "Coucou ", "Bonsoir ", "Yo ")) + text[0].lower() + text[1:]
        return text + f" #{self.rng.randint(1, 999)}"

    def raid_paste(self, paste: str) -> str:
        return self._edit(paste)

    def insult(self) -> str:
        text = self.pick(self.INSULTS)
        if self.rng.random() < 0.3:
            text += " " + self.pick(self.SLANG)
        return self._edit(text)

    def threat(self) -> str:
        return self._edit(self.pick(self.THREATS))

    def slang(self) -> str:
        return self._edit(self.pick(self.SLANG))

    def disguised(self) -> str:
        """A raider's harmless-looking text: it costs the service a reply all the same."""
        if self.rng.random() < 0.5:
            return self.genuine_first()
        return self.tester_first()

    def flood(self, index: int, base: str) -> str:
        """What a script sends 'a thousand at a time': a counter, or the same text again."""
        roll = self.rng.random()
        if roll < 0.4:
            return str(index + 1)
        if roll < 0.8:
            return base
        return f"{base} {index + 1}"

    def drip_insult(self) -> str:
        """One person's own insult, written, not pasted: the slow-drip harasser."""
        opener = self.pick(("", "", "Alors ", "Franchement ", "Hé ", "Toi là, "))
        core = self.pick(
            (
                "t'es qu'une salope", "sale pute", "connasse de féministe", "pauvre conne",
                "ferme ta gueule", "t'es une grosse pute", "espèce de tarée",
                "sale féministe de merde", "mal baisée", "grosse conne",
                "pétasse va", "t'es moche et conne", "pouffiasse",
            )
        )  # fmt: skip
        tail = self.pick(
            (
                "", "", " on t'a rien demandé", " avec ton numéro à la con",
                " ton numéro de merde", " tu te crois où", " tu mérites pas mieux",
                " rends l'argent", " c'est pas toi qui décides",
            )
        )  # fmt: skip
        return (opener + core + tail).strip()

    # --- senders that must never be answered ------------------------------------------------

    def service_text(self, sender: str) -> str:
        """What an alphanumeric sender or a short code sends: notices, codes, adverts."""
        code = self.rng.randint(100000, 999999)
        return self.pick(
            (
                f"{sender} : votre code de vérification est {code}",
                f"Votre colis {code} est disponible en point relais jusqu'au vendredi.",
                f"{sender} : votre facture du mois est disponible dans votre espace client.",
                f"Code de confirmation : {code}. Ne le communiquez à personne.",
                "STOP au 36111 pour ne plus recevoir nos offres. -50% ce week-end !",
                f"{sender} : rappel de votre rendez-vous demain à 10h30.",
                "Vous avez gagné un bon d'achat ! Répondez OUI pour le recevoir.",
            )
        )

    def foreign_text(self) -> str:
        return self.pick(
            (
                "Hi, is this Sarah? It's Mike from the party", "Hello? Who is this?",
                "Salut c'est Maxime de Bruxelles, on s'est vus samedi", "Coucou c'est Luca 😊",
                "Hey it's Tom, we met at the bar last night", "Bonsoir, c'est Yassine",
                "Allô ? C'est Kevin de Genève", "test from abroad", "Hola, soy Javier",
                "Salut c'est Julien, je suis de passage à Paris cette semaine",
            )
        )  # fmt: skip
