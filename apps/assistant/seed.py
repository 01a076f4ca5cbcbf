"""Demo knowledge about the demo church (Iglesia VEA), so `make run` answers from retrieval with no AI key.

Idempotent: documents are found by title; one whose content changed is updated and re-chunked.
"""

from __future__ import annotations

import re

from apps.core.seeding import seed_register

from .models import KnowledgeDocument
from .services import knowledge_document_create, knowledge_document_save

DOCUMENTS = [
    (
        "Horarios de reuniones",
        "horarios, cultos, reuniones",
        """Horarios de la Iglesia VEA

Culto dominical: todos los domingos a las 10:00 y a las 18:00 en el auditorio principal. Cada culto dura
unos 90 minutos e incluye alabanza, predicación y oración.

Escuela dominical para niños: domingos a las 10:00, durante el primer culto, en las aulas del segundo piso.

Reunión de oración: miércoles a las 19:00 en la capilla. Está abierta a todos.

Estudio bíblico: jueves a las 19:30, en línea y en el salón de usos múltiples.

La oficina de la iglesia atiende de martes a viernes de 9:00 a 17:00.""",
    ),
    (
        "Ubicación y cómo llegar",
        "ubicación, dirección, estacionamiento",
        """Dirección de la Iglesia VEA

Estamos en Avenida de los Insurgentes Sur 1234, colonia Del Valle, Ciudad de México, a dos cuadras de la
estación de metrobús Parque Hundido.

Estacionamiento: hay estacionamiento gratuito detrás del edificio, con entrada por la calle Fresas. Los
domingos hay voluntarios que ayudan a estacionar.

Accesibilidad: el edificio tiene rampa de acceso, elevador y baños adaptados.""",
    ),
    (
        "Cómo donar",
        "donativos, ofrendas, diezmos",
        """Cómo apoyar a la Iglesia VEA con un donativo

Transferencia bancaria: Banco Ejemplo, cuenta 0123456789, a nombre de Iglesia VEA. Escribe tu nombre en
el concepto si quieres un recibo.

Tarjeta en línea: en https://vea.example/donar puedes dar con tarjeta de débito o crédito, una vez o cada
mes.

Efectivo: en la mesa de ofrendas al final de cada reunión.

Recibos deducibles: pídelos en la oficina o escribiendo a contacto@vea.example con tus datos fiscales.""",
    ),
    (
        "Grupos y ministerios",
        "grupos, ministerios, jóvenes, niños, matrimonios",
        """Grupos de la Iglesia VEA

Jóvenes (15 a 25 años): se reúnen los sábados a las 18:00 en el auditorio. Lo coordina el Pastor Daniel
Ruiz.

Matrimonios: un encuentro al mes, el primer viernes a las 20:00, con Roberto y Lucía Méndez.

Niños: escuela dominical los domingos a las 10:00 y campamento cada verano, con Carmen Díaz.

Alabanza: ensayos los jueves a las 20:00; si cantas o tocas un instrumento, habla con Javier Torres.

Grupos en casa: pequeños grupos entre semana en distintas colonias; pregunta en la oficina por el más
cercano.""",
    ),
]


def _unwrap(text: str) -> str:
    """Join the source's wrapped lines so each paragraph is one line (as a WhatsApp excerpt should be)."""
    return re.sub(r"(?<!\n)\n(?!\n)", " ", text)


@seed_register(order=150)
def assistant_demo_seed() -> str:
    created = updated = 0
    for title, tags, wrapped in DOCUMENTS:
        content = _unwrap(wrapped)
        document = KnowledgeDocument.objects.filter(title=title).first()
        if document is None:
            knowledge_document_create(title=title, content=content, language="es", tags=tags)
            created += 1
        elif document.content != content or document.tags != tags:
            document.content, document.tags = content, tags
            knowledge_document_save(document=document)
            updated += 1
    return f"{created} knowledge documents created, {updated} updated"
