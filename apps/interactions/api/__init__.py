"""The REST API for analysts and integrators (/api/v1/whatsapp/…): one APIView per operation."""
