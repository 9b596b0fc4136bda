"""A second, differently written test site: La Cadena, a bilingual bike workshop and rental shop in Seville.

Unlike the demo clinic (rendered by Django, a sitemap, one <h2> per topic), this site is plain HTML
found only by following links from "/", and its text is laid out otherwise: a home page of long
paragraphs with no subheadings, price tables with header cells, bulleted conditions, a FAQ as a
definition list (<dl>, <dt>, <dd>) and opening hours as a list. Every page has a site-wide header and
footer the extractor drops. Served by `rag/tests/site.py`; the questions are in `QUESTIONS` below.
"""

from __future__ import annotations

from rag.tests.site import Response

_NAV_ES = (
    '<a href="/">Inicio</a> <a href="/taller/">Taller</a> <a href="/alquiler/">Alquiler</a> '
    '<a href="/escuela/">Escuela</a> <a href="/preguntas/">Preguntas</a> <a href="/horario/">Horario</a> '
    '<a href="/en/">English</a>'
)
_NAV_EN = (
    '<a href="/en/">Home</a> <a href="/en/workshop/">Workshop</a> <a href="/en/rental/">Bike hire</a> '
    '<a href="/en/school/">School</a> <a href="/en/questions/">Questions</a> <a href="/en/hours/">Hours</a> '
    '<a href="/">Español</a>'
)


def _page(lang: str, title: str, main: str) -> Response:
    nav = _NAV_ES if lang == "es" else _NAV_EN
    footer = (
        "La Cadena · Calle Feria 45, Sevilla · Tel. 954 000 000"
        if lang == "es"
        else "La Cadena · Calle Feria 45, Seville · Tel. +34 954 000 000"
    )
    return Response(
        body=(
            f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{title} · La Cadena</title>'
            f"</head><body><header><strong>La Cadena</strong><nav>{nav}</nav></header>"
            f"<main>{main}</main><footer><p>{footer}</p></footer></body></html>"
        )
    )


def _table(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{cell}</th>" for cell in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _faq(pairs: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{question}</dt><dd>{answer}</dd>" for question, answer in pairs) + "</dl>"


ROUTES: dict[str, Response] = {
    # --- Spanish -------------------------------------------------------------------------------------
    "/": _page(
        "es",
        "Taller y alquiler de bicicletas en Sevilla",
        "<h1>La Cadena, tu taller de bicis en el barrio de la Feria</h1>"
        "<p>La Cadena nació en 1998 en un antiguo almacén de la calle Feria, cuando Manuel Ortega decidió "
        "convertir su afición por arreglar bicicletas en un oficio. Hoy el taller lo lleva su hija Rocío junto a "
        "tres mecánicos, y seguimos trabajando igual que el primer día: te explicamos qué le pasa a tu bici antes "
        "de tocarla, te damos el presupuesto por escrito y no cambiamos ninguna pieza sin preguntarte. Arreglamos "
        "bicis de paseo, de carretera, de montaña, plegables y eléctricas, sea cual sea la marca y aunque no la "
        "hayas comprado aquí.</p>"
        "<p>Además del taller alquilamos bicicletas para recorrer Sevilla a tu aire, con casco y candado incluidos, "
        "y vendemos bicis de segunda mano que revisamos pieza a pieza. En nuestra escuela enseñamos a montar a "
        "pequeños y mayores y organizamos talleres de mecánica para que aprendas a resolver tú mismo las averías "
        "más comunes en plena ruta.</p>"
        "<p>Creemos que la bici es la mejor forma de moverse por la ciudad, así que colaboramos con las asociaciones "
        "ciclistas del barrio y cada primer domingo de mes organizamos una salida gratuita por el carril bici del "
        "río, abierta a todo el mundo. En el mostrador hablamos español e inglés, y Rocío también se defiende en "
        "italiano.</p>",
    ),
    "/taller/": _page(
        "es",
        "Taller de reparación",
        "<h1>Taller de reparación</h1>"
        "<p>Trae tu bici sin cita para reparaciones pequeñas; para una puesta a punto, mejor resérvala con un día de "
        "antelación. Todos los precios incluyen la mano de obra y el IVA; las piezas se cobran aparte, y siempre "
        "te avisamos antes de montar cualquier recambio.</p>"
        "<h2>Tarifas del taller</h2>"
        + _table(
            ["Trabajo", "Precio", "Plazo habitual"],
            [
                ["Reparar un pinchazo (cámara incluida)", "12 €", "20 minutos"],
                ["Cambio de cubierta", "8 € + cubierta", "20 minutos"],
                ["Ajuste de frenos de zapata o de disco", "15 €", "30 minutos"],
                ["Purgado de frenos hidráulicos, por rueda", "30 €", "1 hora"],
                ["Ajuste del cambio de marchas", "15 €", "30 minutos"],
                ["Sustitución de cadena", "10 € + cadena", "20 minutos"],
                ["Centrado de rueda", "15 €", "45 minutos"],
                ["Puesta a punto básica", "35 €", "24 horas"],
                ["Puesta a punto completa", "65 €", "48 horas"],
                ["Revisión de bicicleta eléctrica (motor, batería y software)", "49 €", "48 horas"],
            ],
        )
        + "<h2>Qué incluye la puesta a punto completa</h2>"
        "<ul><li>Limpieza y engrase de la transmisión: cadena, piñones y platos.</li>"
        "<li>Ajuste de frenos y cambio, con cambio de cables si están oxidados.</li>"
        "<li>Centrado de las dos ruedas y revisión de los radios.</li>"
        "<li>Revisión de la dirección, los pedalieres y los bujes.</li>"
        "<li>Comprobación de la presión y del desgaste de las cubiertas.</li></ul>"
        "<h2>Bicicletas eléctricas</h2>"
        "<p>Somos servicio técnico oficial de motores Bosch y Shimano Steps: leemos los códigos de error con el "
        "programa del fabricante y actualizamos el software del motor. Diagnosticamos las baterías y, si están "
        "mal, tramitamos la garantía con la marca, pero no abrimos ni reparamos baterías por dentro, porque no es "
        "seguro.</p>",
    ),
    "/alquiler/": _page(
        "es",
        "Alquiler de bicicletas",
        "<h1>Alquiler de bicicletas</h1>"
        "<p>Recorre Sevilla en bici: la ciudad es llana y tiene más de 180 kilómetros de carril bici. Todas las "
        "bicis de alquiler se entregan revisadas, con casco, candado y un mapa de rutas.</p>"
        "<h2>Tarifas de alquiler</h2>"
        + _table(
            ["Bicicleta", "2 horas", "Día completo", "Semana"],
            [
                ["Urbana de paseo", "6 €", "15 €", "60 €"],
                ["Híbrida o de montaña", "8 €", "20 €", "80 €"],
                ["Eléctrica", "15 €", "35 €", "150 €"],
                ["Infantil (de 4 a 10 años)", "4 €", "10 €", "40 €"],
                ["Tándem", "12 €", "30 €", "—"],
            ],
        )
        + "<h2>Condiciones</h2>"
        "<ul><li>Hay que dejar una fianza de 50 € por bici (150 € por las eléctricas), que devolvemos al entregar la "
        "bici en buen estado.</li>"
        "<li>Pedimos el DNI o el pasaporte de la persona que firma el contrato, que debe ser mayor de edad.</li>"
        "<li>Sin coste añadido prestamos sillitas portabebés para niños de hasta 22 kilos y un remolque para "
        "llevar a dos críos.</li>"
        "<li>Si tienes un pinchazo o una avería durante el alquiler, llámanos: te cambiamos la bici en el punto de "
        "la ciudad en que estés.</li>"
        "<li>Si te roban la bici, necesitamos la copia de la denuncia; te cobramos una franquicia de 100 € (300 € "
        "por las eléctricas).</li></ul>"
        "<h2>Reservas y grupos</h2>"
        "<p>Puedes reservar por teléfono o por correo en hola@lacadena.example; en temporada alta (de marzo a "
        "mayo) conviene reservar con una semana de margen. Los grupos de más de ocho personas tienen un 15 % de "
        "descuento.</p>",
    ),
    "/escuela/": _page(
        "es",
        "Escuela de bici",
        "<h1>Escuela de bici</h1>"
        "<p>Nunca es tarde para aprender a montar en bicicleta. En la escuela damos clases particulares y en grupos "
        "muy pequeños en la explanada del parque de Miraflores, a diez minutos de la tienda, con bicis y cascos "
        "nuestros. Los cursos para críos empiezan a los 5 años: primero con bicis sin pedales para coger el "
        "equilibrio y, en cuanto lo tienen, con pedales. La mayoría aprende en tres o cuatro sesiones de una hora. "
        "Para adultos que nunca han montado o que quieren recuperar la confianza, el curso es de cinco sesiones "
        "e incluye circular por la ciudad al final. Una sesión suelta cuesta 20 € y el bono de cinco, 85 €.</p>"
        "<p>Si lo que quieres es valerte por ti mismo cuando la bici falla, apúntate al taller de mecánica básica: "
        "dos tardes de tres horas en las que aprenderás a desmontar una rueda, arreglar un pinchazo, ajustar los "
        "frenos y el cambio y engrasar la cadena. Cuesta 40 € con el material incluido y los grupos son de seis "
        "personas como máximo. Lo hacemos una vez al mes, los martes y jueves por la tarde.</p>",
    ),
    "/preguntas/": _page(
        "es",
        "Preguntas frecuentes",
        "<h1>Preguntas frecuentes</h1>"
        + _faq(
            [
                (
                    "¿Necesito pedir cita para llevar la bici al taller?",
                    "Para arreglos pequeños no: vienes y, si hay hueco, lo hacemos mientras esperas. Las puestas a "
                    "punto y las revisiones de eléctricas se reservan por teléfono o en el mostrador.",
                ),
                (
                    "¿Recogéis la bicicleta en casa?",
                    "Sí. Pasamos a recogerla y te la devolvemos arreglada por 10 € (ida y vuelta) dentro de la "
                    "ronda histórica; fuera de ella, consúltanos.",
                ),
                (
                    "¿Las reparaciones tienen garantía?",
                    "Sí, la mano de obra tiene tres meses de garantía. Las piezas nuevas tienen la garantía del "
                    "fabricante, normalmente dos años.",
                ),
                (
                    "¿Vendéis bicis de segunda mano?",
                    "Sí, siempre tenemos unas cuantas de ocasión, revisadas a fondo y con seis meses de garantía. "
                    "También compramos tu bici usada o te la descontamos de una nueva.",
                ),
                (
                    "¿Puedo dejar mi bici guardada con vosotros?",
                    "Tenemos un guardabicis cubierto y vigilado: 20 € al mes o 2 € por día suelto.",
                ),
                (
                    "¿Cómo se paga?",
                    "Con tarjeta, en efectivo o con Bizum. Para los alquileres, la fianza solo se puede dejar con "
                    "tarjeta o en efectivo.",
                ),
                (
                    "¿Tenéis descuento para estudiantes?",
                    "Un 10 % en el taller y en el alquiler enseñando el carné universitario en vigor.",
                ),
                (
                    "¿Qué pasa si llueve el día que he reservado?",
                    "Si el día del alquiler llueve, puedes cambiar la fecha sin coste o te devolvemos el dinero.",
                ),
                (
                    "¿Se pueden subir las bicis al tren o al metro?",
                    "En el metro de Sevilla sí, fuera de las horas punta; en los trenes de Cercanías, siempre que "
                    "haya sitio en el vagón.",
                ),
            ]
        ),
    ),
    "/horario/": _page(
        "es",
        "Horario y dónde estamos",
        "<h1>Horario y dónde estamos</h1>"
        "<h2>Horario</h2>"
        "<ul><li>De lunes a viernes: de 9:30 a 14:00 y de 17:00 a 20:30.</li>"
        "<li>Sábados: de 10:00 a 14:00.</li>"
        "<li>Domingos y festivos: el taller cierra; solo abrimos para recoger y devolver bicis de alquiler, "
        "de 9:00 a 13:00.</li>"
        "<li>En julio y agosto, por el calor, solo abrimos por las mañanas.</li></ul>"
        "<h2>Dirección</h2>"
        "<p>Calle Feria 45, 41003 Sevilla, al lado del mercado de abastos de la Feria. Llegas con los autobuses "
        "13 y 14 (parada Feria) o en bici por el carril de la Ronda. En el barrio casi no hay sitio para aparcar "
        "el coche: el aparcamiento público más cercano está en la Alameda de Hércules.</p>",
    ),
    # --- English -------------------------------------------------------------------------------------
    "/en/": _page(
        "en",
        "Bike repair and hire in Seville",
        "<h1>La Cadena, the neighbourhood bike workshop in the Feria quarter</h1>"
        "<p>La Cadena opened in 1998 in an old warehouse on Calle Feria, when Manuel Ortega decided to turn his "
        "hobby of fixing bicycles into a trade. Today the workshop is run by his daughter Rocío with three "
        "mechanics, and we still work as we did on the first day: we explain what is wrong with your bike before "
        "we touch it, give you a written estimate and never replace a part without asking you first. We repair "
        "city, road, mountain, folding and electric bikes of any brand, even if you did not buy them from us.</p>"
        "<p>Besides the workshop we rent out bicycles for exploring Seville at your own pace, with helmet and lock "
        "included, and we sell second-hand bikes that we check part by part. At our school we teach children and "
        "grown-ups to ride, and we run mechanics workshops so you can fix the most common breakdowns yourself "
        "when you are out on the road.</p>"
        "<p>We believe cycling is the best way to get around the city, so we work with the local cycling "
        "associations and on the first Sunday of every month we lead a free ride along the riverside cycle "
        "lane, open to everyone. At the counter we speak Spanish and English, and Rocío gets by in Italian too.</p>",
    ),
    "/en/workshop/": _page(
        "en",
        "Repair workshop",
        "<h1>Repair workshop</h1>"
        "<p>Bring your bike in without an appointment for small repairs; for a service, it is best to book a day "
        "ahead. All prices include labour and VAT; parts are charged separately, and we always check with you "
        "before fitting any spare part.</p>"
        "<h2>Workshop rates</h2>"
        + _table(
            ["Job", "Price", "Usual turnaround"],
            [
                ["Puncture repair (inner tube included)", "12 €", "20 minutes"],
                ["Tyre replacement", "8 € + tyre", "20 minutes"],
                ["Rim or disc brake adjustment", "15 €", "30 minutes"],
                ["Hydraulic brake bleed, per wheel", "30 €", "1 hour"],
                ["Gear adjustment", "15 €", "30 minutes"],
                ["Chain replacement", "10 € + chain", "20 minutes"],
                ["Wheel truing", "15 €", "45 minutes"],
                ["Basic service", "35 €", "24 hours"],
                ["Full service", "65 €", "48 hours"],
                ["Electric bike check (motor, battery and software)", "49 €", "48 hours"],
            ],
        )
        + "<h2>What the full service includes</h2>"
        "<ul><li>Cleaning and lubrication of the drivetrain: chain, cassette and chainrings.</li>"
        "<li>Brake and gear adjustment, with new cables if the old ones are rusty.</li>"
        "<li>Truing of both wheels and a check of the spokes.</li>"
        "<li>A check of the headset, bottom bracket and hubs.</li>"
        "<li>Tyre pressure and wear check.</li></ul>"
        "<h2>Electric bikes</h2>"
        "<p>We are an authorised service centre for Bosch and Shimano Steps motors: we read the error codes with "
        "the manufacturer's software and update the motor firmware. We diagnose batteries and, if they are "
        "faulty, handle the warranty claim with the brand, but we do not open or repair battery packs, because "
        "it is not safe.</p>",
    ),
    "/en/rental/": _page(
        "en",
        "Bike hire",
        "<h1>Bike hire</h1>"
        "<p>See Seville by bike: the city is flat and has more than 180 kilometres of cycle lanes. Every hire bike "
        "is checked before it goes out and comes with a helmet, a lock and a route map.</p>"
        "<h2>Hire rates</h2>"
        + _table(
            ["Bike", "2 hours", "Full day", "Week"],
            [
                ["City bike", "6 €", "15 €", "60 €"],
                ["Hybrid or mountain bike", "8 €", "20 €", "80 €"],
                ["Electric bike", "15 €", "35 €", "150 €"],
                ["Children's bike (ages 4 to 10)", "4 €", "10 €", "40 €"],
                ["Tandem", "12 €", "30 €", "—"],
            ],
        )
        + "<h2>Terms</h2>"
        "<ul><li>We take a deposit of 50 € per bike (150 € for electric bikes), refunded when the bike comes back "
        "in good condition.</li>"
        "<li>We need the ID card or passport of the person signing the rental agreement, who must be 18 or "
        "over.</li>"
        "<li>At no extra cost we lend baby seats for children up to 22 kilos and a trailer that carries two "
        "little ones.</li>"
        "<li>If you get a puncture or a breakdown while hiring, call us: we swap the bike wherever you are in "
        "the city.</li>"
        "<li>If the bike is stolen, we need a copy of the police report; the excess is 100 € (300 € for electric "
        "bikes).</li></ul>"
        "<h2>Bookings and groups</h2>"
        "<p>You can book by phone or by email at hola@lacadena.example; in the high season (March to May) it is "
        "best to book a week ahead. Groups of more than eight people get 15 % off.</p>",
    ),
    "/en/school/": _page(
        "en",
        "Cycling school",
        "<h1>Cycling school</h1>"
        "<p>It is never too late to learn to ride a bike. At the school we give one-to-one and very small group "
        "lessons on the esplanade of Miraflores park, ten minutes from the shop, on our own bikes and helmets. "
        "Courses for youngsters start at the age of 5: first on balance bikes without pedals and, once they have "
        "the knack, with pedals. Most learn in three or four one-hour sessions. For adults who have never ridden "
        "or want to get their confidence back, the course has five sessions and ends with a ride through the "
        "city. A single session costs 20 € and a pass for five, 85 €.</p>"
        "<p>If you would rather fend for yourself when your bike lets you down, sign up for the basic mechanics "
        "workshop: two three-hour evenings in which you learn to take a wheel off, mend a puncture, adjust the "
        "brakes and gears and oil the chain. It costs 40 € with materials included, and groups are of six "
        "people at most. We run it once a month, on Tuesday and Thursday evenings.</p>",
    ),
    "/en/questions/": _page(
        "en",
        "Frequently asked questions",
        "<h1>Frequently asked questions</h1>"
        + _faq(
            [
                (
                    "Do I need to book to bring my bike to the workshop?",
                    "Not for small jobs: just come by and, if there is a free slot, we do it while you wait. "
                    "Services and electric bike checks are booked by phone or at the counter.",
                ),
                (
                    "Do you collect bikes from home?",
                    "Yes. We pick it up and bring it back repaired for 10 € (both ways) inside the old city ring "
                    "road; outside it, ask us.",
                ),
                (
                    "Are repairs guaranteed?",
                    "Yes, labour is guaranteed for three months. New parts carry the manufacturer's warranty, "
                    "usually two years.",
                ),
                (
                    "Do you sell second-hand bikes?",
                    "Yes, we always have a few used bikes, thoroughly checked and with a six-month guarantee. We "
                    "also buy your old bike or take it in part exchange for a new one.",
                ),
                (
                    "Can I leave my bike with you?",
                    "We have a covered, supervised bike store: 20 € a month or 2 € for a single day.",
                ),
                (
                    "How can I pay?",
                    "By card, in cash or with Bizum. For hires, the deposit can only be left by card or in cash.",
                ),
                (
                    "Is there a student discount?",
                    "10 % off in the workshop and on hire when you show a valid university card.",
                ),
                (
                    "What if it rains on the day I booked?",
                    "If it rains on the day of your hire, you can move the date for free or we refund you.",
                ),
                (
                    "Can bikes go on the train or the metro?",
                    "On the Seville metro, yes, outside rush hour; on Cercanías local trains, as long as there is "
                    "room in the carriage.",
                ),
            ]
        ),
    ),
    "/en/hours/": _page(
        "en",
        "Opening hours and how to find us",
        "<h1>Opening hours and how to find us</h1>"
        "<h2>Opening hours</h2>"
        "<ul><li>Monday to Friday: 9:30 to 14:00 and 17:00 to 20:30.</li>"
        "<li>Saturdays: 10:00 to 14:00.</li>"
        "<li>Sundays and public holidays: the workshop is closed; we only open to hand out and take back hire "
        "bikes, from 9:00 to 13:00.</li>"
        "<li>In July and August, because of the heat, we only open in the mornings.</li></ul>"
        "<h2>Address</h2>"
        "<p>Calle Feria 45, 41003 Seville, next to the Feria food market. Buses 13 and 14 stop right there "
        "(Feria stop), or ride along the Ronda cycle lane. There is hardly anywhere to park a car in the "
        "neighbourhood: the nearest public car park is at Alameda de Hércules.</p>",
    ),
}

# (question, locale, path of the page that answers it), phrased as a visitor would, not as the page is.
QUESTIONS: list[tuple[str, str, str]] = [
    ("¿Abren los domingos?", "es", "/horario/"),
    ("¿A qué hora cerráis por la tarde?", "es", "/horario/"),
    ("¿Dónde está la tienda?", "es", "/horario/"),
    ("¿Hay sitio para dejar el coche cerca?", "es", "/horario/"),
    ("¿En verano tenéis el mismo horario?", "es", "/horario/"),
    ("¿Cuánto cuesta arreglar un pinchazo?", "es", "/taller/"),
    ("¿Cuánto me cobráis por revisar la bici entera?", "es", "/taller/"),
    ("¿Arregláis baterías de bicis eléctricas?", "es", "/taller/"),
    ("¿Cuánto tardáis en centrar una rueda?", "es", "/taller/"),
    ("¿Cuánto cuesta alquilar una bici eléctrica un día?", "es", "/alquiler/"),
    ("¿Tenéis bicis para niños de alquiler?", "es", "/alquiler/"),
    ("¿Hay que dejar algo de depósito para alquilar?", "es", "/alquiler/"),
    ("¿Qué pasa si me roban la bici alquilada?", "es", "/alquiler/"),
    ("¿Hacéis descuento a grupos grandes?", "es", "/alquiler/"),
    ("¿Atienden a niños que no saben montar en bici?", "es", "/escuela/"),
    ("Tengo 40 años y no sé ir en bici, ¿me enseñáis?", "es", "/escuela/"),
    ("¿Hacéis cursos para aprender a arreglar la bici yo mismo?", "es", "/escuela/"),
    ("¿Venís a buscar la bici a casa?", "es", "/preguntas/"),
    ("¿Puedo pagar con Bizum?", "es", "/preguntas/"),
    ("¿Compráis bicis usadas?", "es", "/preguntas/"),
    ("¿Hay rebaja para universitarios?", "es", "/preguntas/"),
    ("¿Y si llueve el día del alquiler?", "es", "/preguntas/"),
    ("¿Desde cuándo existe la tienda?", "es", "/"),
    ("¿Habláis inglés?", "es", "/"),
    ("Are you open on Sundays?", "en", "/en/hours/"),
    ("What time do you close in the evening?", "en", "/en/hours/"),
    ("Where is the shop?", "en", "/en/hours/"),
    ("Is there anywhere to park my car nearby?", "en", "/en/hours/"),
    ("Do you keep the same hours in summer?", "en", "/en/hours/"),
    ("How much to fix a flat tyre?", "en", "/en/workshop/"),
    ("What does a full tune-up cost?", "en", "/en/workshop/"),
    ("Can you repair an e-bike battery?", "en", "/en/workshop/"),
    ("How long does it take to true a wheel?", "en", "/en/workshop/"),
    ("How much is an electric bike for a day?", "en", "/en/rental/"),
    ("Do you rent bikes for kids?", "en", "/en/rental/"),
    ("Do I have to leave a deposit to hire a bike?", "en", "/en/rental/"),
    ("What happens if my rented bike gets stolen?", "en", "/en/rental/"),
    ("Do big groups get a discount?", "en", "/en/rental/"),
    ("Do you teach kids to ride a bike?", "en", "/en/school/"),
    ("I'm 40 and can't ride a bike, can you teach me?", "en", "/en/school/"),
    ("Do you run classes on fixing your own bike?", "en", "/en/school/"),
    ("Can you pick up my bike from my house?", "en", "/en/questions/"),
    ("Can I pay with Bizum?", "en", "/en/questions/"),
    ("Do you buy used bikes?", "en", "/en/questions/"),
    ("Do students get money off?", "en", "/en/questions/"),
    ("What if it's raining on my rental day?", "en", "/en/questions/"),
    ("How long has the shop been around?", "en", "/en/"),
    ("Do you speak English?", "en", "/en/"),
]

# (question, locale): nothing on this site answers these (a dentist's questions, asked of a bike shop).
UNANSWERABLE: list[tuple[str, str]] = [
    ("¿Cuánto cuesta un empaste de una muela?", "es"),
    ("¿Ponéis implantes dentales de titanio?", "es"),
    ("How much is a root canal treatment?", "en"),
    ("Do you whiten teeth with a laser?", "en"),
]
